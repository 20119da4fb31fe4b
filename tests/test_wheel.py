"""Installable as a library: a wheel built from the checkout, installed into a fresh venv, runs from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers.paths import PROJECT_ROOT


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CORRLAB_ROOT")}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_wheel_installs_and_evaluates_from_an_unrelated_folder(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools writes build/ and *.egg-info into the tree it builds
    skip = shutil.ignore_patterns(".git", ".venv", "logs", "build", "*.egg-info", "__pycache__", "outputs", "wandb")
    shutil.copytree(PROJECT_ROOT, source, ignore=skip)
    wheels = tmp_path / "wheels"
    constraint = str(PROJECT_ROOT / "constraints" / "build.txt")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--build-constraint", constraint, "-w"]
    run([*build, str(wheels), str(source)], source)
    (wheel,) = wheels.glob("corrlab-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())  # configs and the C++/CUDA sources are package data
    package_data = {f"corrlab/conf/{p.relative_to(source / 'conf')}" for p in (source / "conf").rglob("*.yaml")}
    package_data |= {f"corrlab/ops/csrc/{p.name}" for p in (source / "src" / "ops" / "csrc").iterdir()}
    assert len(package_data) > 50 and sorted(package_data - shipped) == []

    # A fresh venv whose only corrlab is the wheel; the heavy dependencies come from this environment's
    # site-packages as a plain path (its editable-install hook is not run there, so the checkout is not seen).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp_path)

    elsewhere = tmp_path / "elsewhere"
    user_conf = elsewhere / "myconf" / "model"
    user_conf.mkdir(parents=True)
    (user_conf / "mysift.yaml").write_text("_target_: corrlab.modules.sift.SIFTMatcher\nratio: 0.7\n")
    python = str(venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import src"], cwd=elsewhere, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'src'" in probe.stderr
    located = run([python, "-c", "import corrlab; print(corrlab.__file__)"], elsewhere).stdout
    assert str(site) in located

    args = ["data=synthetic", "data.num_test_pairs=2", "hydra.run.dir=runs/sift"]
    run([str(venv / "bin" / "corrlab-eval"), "model=sift", *args], elsewhere)
    summary = json.loads((elsewhere / "runs" / "sift" / "summary.json").read_text())
    assert summary["num_pairs"] == 2 and 0.0 <= summary["metrics"]["mma@3"] <= 1.0

    # a user's own config folder joins Hydra's search path
    user_args = [f"hydra.searchpath=[file://{elsewhere / 'myconf'}]", "model=mysift", *args[:-1]]
    run([str(venv / "bin" / "corrlab-eval"), *user_args, "hydra.run.dir=runs/mysift"], elsewhere)
    config = (elsewhere / "runs" / "mysift" / "config.yaml").read_text()
    assert "ratio: 0.7" in config
