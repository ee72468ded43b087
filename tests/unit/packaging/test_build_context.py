"""The build context filter of images/context.py: Docker's .dockerignore rules, as BuildKit applies
them, on paths and on a real directory tree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from images import context
from tests.unit.packaging.images import IMAGES, IMAGES_DIR, REPO, Image


def excluded(path: str, *lines: str) -> bool:
    return context.is_excluded(path, context.read_patterns(lines))


@pytest.mark.parametrize(
    ("path", "lines", "expected"),
    [
        # The last matching pattern wins; `!` re-includes.
        ("a.txt", ["*.txt"], True),
        ("a.txt", ["*.txt", "!a.txt"], False),
        ("a.txt", ["!a.txt", "*.txt"], True),
        ("a.txt", ["*", "!a.txt", "a.*"], True),
        ("b.txt", ["*", "!a.txt"], True),
        # A pattern matching a parent directory covers everything below it.
        ("docs/guide/intro.md", ["docs"], True),
        ("docs/guide/intro.md", ["docs/guide"], True),
        ("docs/guide/intro.md", ["docs", "!docs/guide"], False),
        ("docs/guide/intro.md", ["*", "!docs/"], False),  # a trailing slash is cleaned away
        ("docsx/intro.md", ["docs"], False),
        # `*` and `?` stay within one path element.
        ("a/b.txt", ["*.txt"], False),
        ("a/b.txt", ["*/*.txt"], True),
        ("ab", ["a?"], True),
        ("a/b", ["a?"], False),
        # `**` spans any number of directories, none included.
        ("a/b/c.pyc", ["**/*.pyc"], True),
        ("c.pyc", ["**/*.pyc"], True),
        ("x/y/__pycache__/m.cpython-311.pyc", ["**/__pycache__"], True),
        ("__pycache__/m.pyc", ["**/__pycache__"], True),
        ("a/b", ["a/**/b"], True),
        ("a/x/y/b", ["a/**/b"], True),
        ("a/x/y/c", ["a/**/b"], False),
        ("a/x/y", ["a/**"], True),
        ("a", ["a/**"], False),
        ("operator/kubeloop.egg-info/PKG-INFO", ["**/*.egg-info"], True),
        # Leading slashes, `./`, surrounding blanks and comments.
        ("a/b", ["/a"], True),
        ("a/b", ["./a/b"], True),
        ("a", ["  a  "], True),
        ("a", ["# a", ""], False),
        # Characters that mean something in a regular expression mean nothing here.
        ("a+b(c).txt", ["a+b(c).txt"], True),
        ("aab(c).txt", ["a+b(c).txt"], False),
        ("a+b(c).txt", ["a+b(c)*"], True),
        ("file[1]", ["file\\[1\\]"], True),
        ("file1", ["file[0-9]"], True),
    ],
)  # fmt: skip
def test_docker_ignore_rules(path: str, lines: list[str], expected: bool) -> None:
    assert excluded(path, *lines) is expected


def test_a_lone_exclamation_mark_is_refused() -> None:
    with pytest.raises(ValueError, match="illegal exclusion pattern"):
        context.read_patterns(["!"])


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


FILES = {
    "pyproject.toml": "[project]\n",
    "README.md": "readme\n",
    "operator/kubeloop/__init__.py": "",
    "operator/kubeloop/__pycache__/__init__.cpython-311.pyc": "bytecode",
    "operator/kubeloop.egg-info/PKG-INFO": "x",
    "docs/a.md": "a",
    "docs/keep.md": "keep",
    ".venv/lib/big.py": "x",
    ".dockerignore": "*\n",
}


def paths(root: Path, *lines: str) -> list[str]:
    return [e.path for e in context.walk(root, context.read_patterns(lines))]


def test_walk_applies_the_rules_and_lists_directories_and_files(tmp_path: Path) -> None:
    root = tree(tmp_path, FILES)
    lines = ["*", "!pyproject.toml", "!operator/", "**/__pycache__", "**/*.egg-info", "!docs/keep.md"]
    assert paths(root, *lines) == [
        "docs/keep.md",  # re-included below an excluded directory; the directory itself is not listed
        "operator",
        "operator/kubeloop",
        "operator/kubeloop/__init__.py",
        "pyproject.toml",
    ]


def test_walk_without_rules_takes_everything_but_the_root_ignore_file(tmp_path: Path) -> None:
    root = tree(tmp_path, FILES)
    assert ".dockerignore" not in paths(root)  # the builder would apply it a second time
    assert "operator/kubeloop/__pycache__/__init__.cpython-311.pyc" in paths(root)


def test_walk_does_not_descend_into_excluded_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing can re-include anything below .venv or docs, so they are not even read (a virtualenv
    is a big tree); a `!` pattern below a directory makes the walk go in."""
    root = tree(tmp_path, FILES)
    scanned: list[str] = []
    scandir = os.scandir

    def recording(path: Path) -> Iterator[os.DirEntry[str]]:
        scanned.append(Path(path).relative_to(root).as_posix())
        return scandir(path)

    monkeypatch.setattr(os, "scandir", recording)
    assert paths(root, "*", "!README.md") == ["README.md"]
    assert scanned == ["."]
    scanned.clear()
    assert paths(root, "*", "!docs/*.md", "docs/a.md") == ["docs/keep.md"]
    assert sorted(scanned) == [".", "docs"]


def test_copy_reproduces_the_listed_entries_with_a_fixed_mtime(tmp_path: Path) -> None:
    root = tree(tmp_path / "src", FILES)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("README.md", root / "link")
    entries = context.walk(root, context.read_patterns(["**/__pycache__", ".venv"]))
    context.copy(root, entries, tmp_path / "dest")
    dest = tmp_path / "dest"
    assert paths(dest) == [e.path for e in entries]
    assert os.access(dest / "run.sh", os.X_OK) and not os.access(dest / "README.md", os.X_OK)
    assert os.readlink(dest / "link") == "README.md"
    assert {os.lstat(dest / e.path).st_mtime for e in entries} == {context.FIXED_MTIME}
    assert context.digest(dest, entries) == context.digest(root, entries)


def test_digest_covers_paths_bytes_and_the_executable_bit(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a/b.py": "x = 1\n"})

    def digest() -> str:
        return context.digest(root, context.walk(root, []))

    first = digest()
    assert digest() == first
    (root / "a/b.py").write_text("x = 2\n")
    second = digest()
    assert second != first
    (root / "a/b.py").chmod(0o755)
    third = digest()
    assert third != second
    (root / "a/b.py").rename(root / "a/c.py")
    assert digest() != third
    os.utime(root / "a/c.py", (0, 0))  # a timestamp alone is no change
    assert digest() == digest()


@pytest.mark.parametrize("image", IMAGES, ids=[i.component for i in IMAGES])
def test_each_image_context_is_pyproject_readme_and_the_package_sources(image: Image) -> None:
    ignore = IMAGES_DIR / image.component / "Dockerfile.dockerignore"
    patterns = context.read_patterns(ignore.read_text().splitlines())
    files = [e.path for e in context.walk(REPO, patterns) if e.kind == "file"]
    assert {"pyproject.toml", "README.md", "operator/kubeloop/__init__.py"} <= set(files)
    assert all(f in ("pyproject.toml", "README.md") or f.startswith("operator/") for f in files)
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or ".egg-info" in f]
