"""The local base image's mirror comes from the machine's own apt sources (images/base.py), in either
format; the building itself needs root and minutes, and is measured by hand (images/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from images import base

DEB822 = """\
Types: deb deb-src
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm

Types: deb
URIs: http://other.example/debian
Suites: trixie
"""


def sources(tmp_path: Path, deb822: str = "", one_line: str = "") -> Path:
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    if deb822:
        (tmp_path / "etc/apt/sources.list.d/debian.sources").write_text(deb822)
    if one_line:
        (tmp_path / "etc/apt/sources.list").write_text(one_line)
    return tmp_path


def test_deb822_sources_give_the_suite_and_its_pockets(tmp_path: Path) -> None:
    root = sources(tmp_path, DEB822)
    assert base.apt_sources("bookworm", root) == [
        ("http://mirror.example/debian", "bookworm", "main contrib"),
        ("http://mirror.example/debian", "bookworm-updates", "main contrib"),
        ("http://mirror.example/debian-security", "bookworm-security", "main"),
    ]


def test_one_line_sources_with_options_and_comments(tmp_path: Path) -> None:
    root = sources(tmp_path, one_line=(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
        "deb-src http://mirror.example/debian bookworm main\n"
        "deb http://mirror.example/debian-security bookworm-security main # security\n"
    ))  # fmt: skip
    assert base.apt_sources("bookworm", root) == [
        ("http://mirror.example/debian", "bookworm", "main"),
        ("http://mirror.example/debian-security", "bookworm-security", "main"),
    ]


def test_the_mirror_is_the_suites_own_uri(tmp_path: Path) -> None:
    root = sources(tmp_path, DEB822)
    assert base.mirror("bookworm", root) == "http://mirror.example/debian"
    with pytest.raises(RuntimeError, match="no Debian source for 'bullseye'"):
        base.mirror("bullseye", root)
