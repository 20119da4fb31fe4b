"""Resuming from last.ckpt continues exactly (same steps, losses and final weights as one uninterrupted run) for
every training datamodule, from an epoch end and from mid-epoch, bounded by max_epochs, max_steps or both."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from corrlab.datamodules.sampling import ResumableDataLoader
from corrlab.pipeline.train import train
from tests.helpers.megadepth_fixture import write_megadepth
from tests.helpers.pump_mix_fixture import write_aligned_pairs
from tests.helpers.semantic_fixtures import write_ap10k, write_pfpascal, write_spair
from tests.helpers.training import csv_metric, tiny_run_config

ANY_PAIR_MODEL = "tests.helpers.tiny_matcher.AnyPairMatcher"


def run(
    output_dir: Path, data: list[str] | None, overrides: list[str], ckpt_path: Path | None = None
) -> tuple[dict[int, float], dict]:
    """Train; return the logged losses by step and the final last.ckpt."""
    cfg = tiny_run_config(output_dir, *overrides, data=data)
    with open_dict(cfg):
        cfg.ckpt_path = str(ckpt_path) if ckpt_path else None
        if data is not None:
            cfg.model._target_ = ANY_PAIR_MODEL
    train(cfg)
    last = torch.load(output_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return csv_metric(output_dir, "train/total"), last


SHORT_RUNS: dict[tuple[str, ...], Path] = {}  # synthetic interrupted runs shared by cases: overrides -> run dir


def assert_resume_is_exact(tmp_path: Path, data: list[str] | None, full: list[str], interrupted: list[str]) -> dict:
    """Run `full`; run `interrupted` (a shorter run), then resume it with `full`: the resumed run logs the
    straight run's steps from where it resumed, with the same losses, and ends in the same state."""
    straight_losses, straight = run(tmp_path / "straight", data, full)
    if data is not None or tuple(interrupted) not in SHORT_RUNS:
        run(tmp_path / "interrupted", data, interrupted)
        SHORT_RUNS[tuple(interrupted)] = tmp_path / "interrupted"
    checkpoint = SHORT_RUNS[tuple(interrupted)] / "checkpoints" / "last.ckpt"
    stopped = torch.load(checkpoint, weights_only=False)
    resumed_losses, resumed = run(tmp_path / "resumed", data, full, checkpoint)
    start = stopped["global_step"]
    assert 0 < start < straight["global_step"]
    assert resumed_losses == {step: v for step, v in straight_losses.items() if step >= start}
    assert (resumed["global_step"], resumed["epoch"]) == (straight["global_step"], straight["epoch"])
    for name, value in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], value), name
    return stopped


# 4 batches per epoch.  Each case: the uninterrupted run, and the shorter run that is resumed with it (the first
# two cases resume the same one).
NO_VAL = "trainer.limit_val_batches=0"
SYNTHETIC_CASES = {
    "max_epochs, resumed from an epoch end": (["trainer.max_epochs=3"], ["trainer.max_epochs=1"]),
    "max_epochs with max_steps set, resumed from an epoch end": (
        ["trainer.max_epochs=3", "trainer.max_steps=100"],
        ["trainer.max_epochs=1"],
    ),
    "max_steps, resumed mid-epoch": ([NO_VAL, "trainer.max_steps=10"], [NO_VAL, "trainer.max_steps=6"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", SYNTHETIC_CASES)
def test_resume_on_synthetic_pairs_is_exact(tmp_path, case):
    full, interrupted = SYNTHETIC_CASES[case]
    stopped = assert_resume_is_exact(tmp_path, None, full, interrupted)
    position = stopped["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert position == [{"epoch": 0, "batches": 4}] if stopped["global_step"] == 4 else [{"epoch": 1, "batches": 2}]


def megadepth(root: Path) -> list[str]:
    root = write_megadepth(root)
    return [
        "data=megadepth",
        f"data.root={root}",
        "data.aspect_range=[1.3,1.7]",
        "data.crop_aspect=1.5",
        "data.train_resize={mode: fixed, size: [48, 64]}",
        "data.pairs_per_scene=4",  # 4 + 4 of the fixture's 10 + 4 pairs, redrawn each epoch
        "data.batch_size=2",
    ]


def pump_mix(root: Path) -> list[str]:
    return [
        "data=pump_mix",
        f"data.root={write_aligned_pairs(root)}",
        "data.num_web=2",
        "data.num_real_homography=2",
        "data.num_real=4",
        "data.synthetic.image_size=[48,48]",
        "data.real.crop=48",
        "data.batch_size=2",
        "data.num_workers=0",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("data", [megadepth, pump_mix])
def test_resume_mid_epoch_on_real_training_datamodules_is_exact(tmp_path, data):
    steps = ["trainer.max_steps=6", "trainer.max_steps=3"]
    assert_resume_is_exact(tmp_path, data(tmp_path / "data"), [NO_VAL, steps[0]], [NO_VAL, steps[1]])


def keypoint_datamodules(root: Path) -> dict:
    from corrlab.datamodules.ap10k import AP10KDataModule
    from corrlab.datamodules.ap10k_pairs import write_pairs
    from corrlab.datamodules.pfpascal import PFPascalDataModule
    from corrlab.datamodules.spair import SPairDataModule

    resize = {"mode": "fixed", "size": [48, 64]}
    write_spair(root / "spair")
    write_pfpascal(root / "pfpascal")
    write_ap10k(root / "ap10k")
    write_pairs(root / "ap10k", root / "ap10k" / "PairAnnotation", seed=42)
    return {
        "spair": SPairDataModule(root=str(root / "spair"), train_resize=resize, batch_size=1),
        "pfpascal": PFPascalDataModule(root=str(root / "pfpascal"), train_resize=resize, batch_size=1),
        "ap10k": AP10KDataModule(root=str(root / "ap10k"), train_resize=resize, batch_size=1),
    }


@pytest.mark.slow
def test_keypoint_datamodules_train_through_the_resumable_loader(tmp_path):
    """SPair, PF-Pascal and AP-10K: a loader restored to (epoch 1, k batches), as Lightning restores it from a
    checkpoint, serves the rest of epoch 1, the same pairs as the uninterrupted loader."""
    for name, dm in keypoint_datamodules(tmp_path).items():
        loader = dm.train_dataloader()
        assert isinstance(loader, ResumableDataLoader), name
        loader.sampler.set_epoch(1)
        straight = [batch["name"] for batch in loader]
        assert straight, name
        for served in range(len(straight) + 1):
            restored = dm.train_dataloader()
            restored.load_state_dict({"epoch": 1, "batches": served})
            restored.sampler.set_epoch(1)
            assert [batch["name"] for batch in restored] == straight[served:], (name, served)
