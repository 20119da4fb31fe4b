"""The dataset catalog: registry discovery, `corrlab-data` list/info/verify on fixtures."""

from __future__ import annotations

import subprocess
import sys

import pytest
import tomllib

from corrlab.datamodules.catalog import DatasetEntry, entries, get, names, registry
from corrlab.datamodules.catalog.cli import main
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.megadepth_fixture import write_megadepth
from tests.helpers.paths import PROJECT_ROOT


def test_every_geometric_dataset_is_registered_with_sources():
    assert {"hpatches", "megadepth", "eth3d"} <= set(names())
    for entry in entries().values():
        assert isinstance(entry, DatasetEntry) and "http" in entry.how_to_get and entry.layout.strip()
        assert f"corrlab-data verify {entry.name}" in entry.how_to_get
    assert (
        "213,461,598,257 bytes" in get("megadepth").how_to_get
        and "multi_view_training_rig.7z" in get("eth3d").how_to_get
    )
    with pytest.raises(KeyError, match="known datasets: .*megadepth"):
        get("megadepht")


def test_an_entry_module_without_entry_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "fake_entries"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from corrlab.datamodules.catalog.registry import DatasetEntry\n"
        "ENTRY = DatasetEntry('good', 'Good', 'good', 'layout', 'http://x', verify=lambda root: None)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import fake_entries

    monkeypatch.setattr(registry, "entries_package", fake_entries)
    registry.entries.cache_clear()
    try:
        assert list(registry.entries()) == ["good"]
        (package / "bad.py").write_text("X = 1\n")
        registry.entries.cache_clear()
        with pytest.raises(TypeError, match="bad must define ENTRY"):
            registry.entries()
    finally:
        registry.entries.cache_clear()
        sys.modules.pop("fake_entries.bad", None)


def test_cli_list_and_info(capsys):
    assert main(["list"]) == 0
    assert "megadepth" in capsys.readouterr().out
    assert main(["info", "megadepth"]) == 0
    out = capsys.readouterr().out
    assert "scene_info/<scene>.npz" in out and "megadepth_test_1500.tar" in out and "train, depth, test1500" in out
    assert main(["info", "nope"]) == 2 and "known datasets" in capsys.readouterr().err


def test_cli_verify_reports_and_sets_the_exit_code(tmp_path, capsys):
    root = write_megadepth(tmp_path / "megadepth")
    assert main(["verify", "megadepth", str(root), "--part", "train"]) == 0
    assert "[train] complete" in capsys.readouterr().out
    assert main(["verify", "megadepth", str(root)]) == 1  # the fixture's test index has 3 pairs, not 1500
    out = capsys.readouterr().out
    assert "[test1500] INCOMPLETE" in out and "MegaDepth-1500 pairs: 3, expected 1500" in out and "How to get it" in out
    hpatches = write_hpatches(tmp_path / "hp", num_images=2)
    assert main(["verify", "hpatches", str(hpatches)]) == 1
    out = capsys.readouterr().out
    assert "1 i_ + 1 v_ = 2, expected 52 + 56 = 108" in out and "i_fixture/3.ppm" in out
    assert main(["verify", "hpatches", str(tmp_path / "nowhere")]) == 1 and "no such folder" in capsys.readouterr().out
    assert main(["verify", "megadepth", str(root), "--part", "bogus"]) == 2


def test_corrlab_data_is_a_console_script():
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["corrlab-data"] == "corrlab.datamodules.catalog.cli:main"


def test_list_and_info_answer_without_importing_torch():
    # `corrlab-data list` / `info` answer in about a second: they read text, the loaders (and torch) load on verify
    code = (
        "import sys\n"
        "from corrlab.datamodules.catalog.cli import main\n"
        "from corrlab.datamodules.catalog.registry import names\n"
        "assert main(['list']) == 0\n"
        "for name in names():\n"
        "    assert main(['info', name]) == 0\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'hydra', 'cv2') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SPair-71k" in result.stdout and "hpatches" in result.stdout
