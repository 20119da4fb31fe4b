"""The compiled-ops build cache: one folder per version of the sources (checkouts with other sources never rebuild
each other's extension), and the one-time compile says what it builds and why it takes time."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch.utils.cpp_extension

from corrlab.ops import extension


def test_build_folder_follows_the_sources_and_the_first_build_says_so(tmp_path, monkeypatch, capsys):
    csrc = tmp_path / "csrc"
    shutil.copytree(extension.CSRC, csrc)
    monkeypatch.setattr(extension, "CSRC", csrc)
    monkeypatch.setenv("CORRLAB_OPS_CACHE", str(tmp_path / "cache"))
    folders = []

    def fake_load(name, sources, build_directory, **options):  # records where torch would build, "builds" there
        folders.append(Path(build_directory))
        (Path(build_directory) / f"{name}.so").write_bytes(b"")
        return name

    monkeypatch.setattr(torch.utils.cpp_extension, "load", fake_load)
    build = extension.load_extension.__wrapped__  # without the per-process cache
    sources = ("ops4d_cpu_bind.cpp",)

    build("ops", sources, False)
    first = capsys.readouterr().err
    assert f"compiling the C++ extension 'ops' (ops4d_cpu_bind.cpp) into {folders[0]}" in first
    assert "once per source version" in first and "minutes" in first
    build("ops", sources, False)  # same sources: the cached build, silently
    assert folders[1] == folders[0] and capsys.readouterr().err == ""

    source = csrc / sources[0]
    source.write_text(source.read_text() + "\n// another checkout's version\n")
    build("ops", sources, False)
    assert folders[2] != folders[0] and folders[2].parent == folders[0].parent
    assert "compiling the C++ extension 'ops'" in capsys.readouterr().err

    header = csrc / "ops4d.h"  # included by the sources: part of their version
    header.write_text(header.read_text() + "\n// changed\n")
    build("ops", sources, False)
    assert len(set(folders)) == 3
