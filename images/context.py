"""The build context an image sees: the repository filtered by `<Dockerfile>.dockerignore` rules.

The rules follow Docker's (moby/patternmatcher, as BuildKit reads them): patterns are cleaned
paths relative to the context; `*` and `?` stay within one path element, `**` spans any number of
them; a pattern that matches a parent directory covers everything below it; `!` re-includes; the
last matching pattern wins. The filtered files are copied into a directory of their own that is
handed to the builder: buildah 1.28 does not read per-Dockerfile ignore files, and the copy is
also exactly what the cache key hashes, so the two cannot disagree.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Every copied file gets this mtime (2024-01-01), as SOURCE_DATE_EPOCH does for reproducible builds:
# buildah's layer cache digests COPY sources including their timestamps, and a checkout or an editor
# touching a file must not invalidate a layer whose bytes did not change. Not 0: wheels (zip) cannot
# store dates before 1980.
FIXED_MTIME = 1704067200
_REGEX_SPECIAL = set(".+()|{}$")
# An ignore file at the context root would be applied a second time by the builder.
_ROOT_IGNORE_FILES = (".dockerignore", ".containerignore")


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool  # "!pattern": re-include
    kind: str  # exact, prefix, suffix or regexp (how Docker compiles it)
    regexp: re.Pattern[str] | None

    def matches(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regexp is not None
        return self.regexp.match(path) is not None


def _clean(path: str) -> str:
    """Go's filepath.Clean for slash paths ("" -> ".", no trailing or doubled slashes)."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def compile_pattern(line: str) -> Pattern:
    """One ignore-file pattern; a leading `!` re-includes."""
    exclusion = line.startswith("!")
    text = _clean(line[1:].strip() if exclusion else line)
    if len(text) > 1 and text.startswith("/"):
        text = text[1:]
    kind, regexp = _compile(text)
    return Pattern(text, exclusion, kind, regexp)


def _compile(text: str) -> tuple[str, re.Pattern[str] | None]:
    """As moby/patternmatcher compiles a pattern: exact, prefix or suffix fast paths, else a regexp."""
    regex, kind, i = "^", "exact", 0
    while i < len(text):
        ch = text[i]
        if ch == "*" and text[i + 1 : i + 2] == "*":
            i, regex, kind = _double_star(text, i, regex, kind)
        elif ch == "*":
            regex, kind = regex + "[^/]*", "regexp"
        elif ch == "?":
            regex, kind = regex + "[^/]", "regexp"
        elif ch in _REGEX_SPECIAL:
            regex += "\\" + ch
        elif ch == "\\" and i + 1 < len(text):
            i += 1
            regex, kind = regex + "\\" + text[i], "regexp"
        elif ch == "\\":
            regex += "\\\\"
        elif ch in "[]":
            regex, kind = regex + ch, "regexp"
        else:
            regex += ch
        i += 1
    return kind, re.compile(regex + r"\Z") if kind == "regexp" else None


def _double_star(text: str, i: int, regex: str, kind: str) -> tuple[int, str, str]:
    """`**` at text[i]: any number of path elements, even none. Returns the last index it used."""
    start, i = i, i + 1
    if text[i + 1 : i + 2] == "/":
        i += 1  # "**/" is read as "**"
    if i + 1 == len(text):  # a trailing "**" matches everything below
        kind = "prefix" if kind == "exact" else "regexp"
        regex += ".*" if kind == "regexp" else ""
    else:
        regex, kind = regex + "(.*/)?", "regexp"
    return i, regex, "suffix" if start == 0 else kind


def read_patterns(lines: Iterable[str]) -> list[Pattern]:
    """An ignore file's lines: blank lines and `#` comments skipped, surrounding whitespace dropped."""
    patterns = []
    for raw in lines:
        line = raw.strip()
        if line and not line.startswith("#"):
            if line == "!":
                raise ValueError('illegal exclusion pattern: "!"')
            patterns.append(compile_pattern(line))
    return patterns


def is_excluded(path: str, patterns: list[Pattern]) -> bool:
    """Whether a slash path relative to the context is left out; the last matching pattern decides."""
    parents = path.split("/")[:-1]
    prefixes = ["/".join(parents[: i + 1]) for i in range(len(parents))]
    excluded = False
    for pattern in patterns:
        if pattern.exclusion != excluded:
            continue  # only a later opposite pattern can change the answer
        if pattern.matches(path) or any(pattern.matches(p) for p in prefixes):
            excluded = not pattern.exclusion
    return excluded


def _may_include_below(directory: str, patterns: list[Pattern]) -> bool:
    """Whether some `!` pattern could re-include a path under an excluded directory (else prune it)."""
    parts = directory.split("/")
    for pattern in patterns:
        if not pattern.exclusion:
            continue
        segments = pattern.text.split("/")
        if "**" in "".join(segments[: len(parts)]):
            return True
        head = segments[: len(parts)]
        if all(_segment_matches(seg, part) for seg, part in zip(head, parts, strict=False)):
            return True
    return False


def _segment_matches(segment: str, part: str) -> bool:
    kind, regexp = _compile(segment)
    return Pattern(segment, False, kind, regexp).matches(part)


@dataclass(frozen=True)
class Entry:
    path: str  # slash path relative to the context
    kind: str  # "file", "link" or "dir"
    executable: bool = False


def walk(root: Path, patterns: list[Pattern]) -> list[Entry]:
    """The context's entries, sorted by path: what is not excluded, pruning excluded directories."""
    return sorted(_walk(root, "", patterns), key=lambda e: e.path)


def _walk(root: Path, prefix: str, patterns: list[Pattern]) -> Iterator[Entry]:
    with os.scandir(root / prefix if prefix else root) as entries:
        for dirent in entries:
            path = f"{prefix}{dirent.name}"
            if not prefix and dirent.name in _ROOT_IGNORE_FILES:
                continue
            excluded = is_excluded(path, patterns)
            if dirent.is_dir(follow_symlinks=False):
                if not excluded:
                    yield Entry(path, "dir")
                if not excluded or _may_include_below(path, patterns):
                    yield from _walk(root, path + "/", patterns)
            elif excluded:
                continue
            elif dirent.is_symlink():
                yield Entry(path, "link")
            else:
                mode = dirent.stat(follow_symlinks=False).st_mode
                yield Entry(path, "file", bool(mode & stat.S_IXUSR))


def digest(root: Path, entries: list[Entry]) -> str:
    """sha256 over every entry's path, kind, executable bit and bytes (or link target)."""
    h = hashlib.sha256()
    for entry in entries:
        h.update(f"{entry.kind}\0{entry.path}\0{int(entry.executable)}\0".encode())
        source = root / entry.path
        if entry.kind == "file":
            with source.open("rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
        elif entry.kind == "link":
            h.update(os.readlink(source).encode())
    return h.hexdigest()


def copy(root: Path, entries: list[Entry], dest: Path) -> None:
    """The filtered context in `dest`, with every mtime set to FIXED_MTIME."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        target = dest / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "dir":
            target.mkdir(exist_ok=True)
        elif entry.kind == "link":
            target.symlink_to(os.readlink(root / entry.path))
        else:
            shutil.copyfile(root / entry.path, target)
            target.chmod(0o755 if entry.executable else 0o644)
    for current, dirs, files in os.walk(dest):
        for name in files + dirs:
            os.utime(os.path.join(current, name), (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    os.utime(dest, (FIXED_MTIME, FIXED_MTIME))
