"""The compiled-ops build cache: one folder per version of the sources (checkouts with other sources never rebuild
each other's extension), the one-time compile says what it builds and why it takes time, and a build that loaded
once is imported again without torch's `load` (its ninja run and compiler checks in every process)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.utils.cpp_extension

from corrlab.ops import extension, pyramid
from corrlab.ops import pyramid_reference as reference


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
    build("ops", sources, False)  # same sources: the cached build, silently (this fake .so does not import,
    assert folders[1] == folders[0] and capsys.readouterr().err == ""  # so torch's load is asked again)

    source = csrc / sources[0]
    source.write_text(source.read_text() + "\n// another checkout's version\n")
    build("ops", sources, False)
    assert folders[2] != folders[0] and folders[2].parent == folders[0].parent
    assert "compiling the C++ extension 'ops'" in capsys.readouterr().err

    header = csrc / "ops4d.h"  # included by the sources: part of their version
    header.write_text(header.read_text() + "\n// changed\n")
    build("ops", sources, False)
    assert len(set(folders)) == 3


@pytest.mark.slow
def test_a_build_that_loaded_once_is_imported_without_torchs_load(monkeypatch):
    name, sources = "corrlab_pyramid_cpp", pyramid.SOURCES["cpp"]
    extension.load_extension(name, sources, False)  # built (or found) and loaded by torch's load at least once

    def refuse(*args, **options):
        raise AssertionError("torch.utils.cpp_extension.load was called for a build that loaded before")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", refuse)
    module = extension.load_extension.__wrapped__(name, sources, False)  # a fresh process's first call
    volume = torch.rand(3, 9, 13, generator=torch.Generator().manual_seed(0))
    values, indices = module.block_max(volume, 4)
    expected_values, expected_indices = reference.block_max_reference(volume, 4)
    assert torch.equal(values, expected_values) and torch.equal(indices, expected_indices)
