"""Runs write logs/ and read data/ under $CORRLAB_ROOT, else the working directory (not the installed package)."""

from __future__ import annotations

from tests.conftest import compose_config


def test_paths_follow_corrlab_root_else_the_working_directory(tmp_path, monkeypatch):
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.delenv("CORRLAB_ROOT", raising=False)
    monkeypatch.chdir(here)
    cfg = compose_config("eval", [], tmp_path / "run")
    assert (cfg.paths.data_dir, cfg.paths.log_dir) == (str(here.resolve() / "data"), str(here.resolve() / "logs"))
    assert cfg.hydra.run.dir.startswith(str(here.resolve() / "logs" / "eval" / "runs") + "/")

    project = tmp_path / "project"
    monkeypatch.setenv("CORRLAB_ROOT", str(project))
    assert (cfg.paths.data_dir, cfg.paths.log_dir) == (str(project.resolve() / "data"), str(project.resolve() / "logs"))
