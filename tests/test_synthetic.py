"""Synthetic homography pairs: the ground truth lands on the same image content; splits are disjoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from corrlab.datamodules.synthetic import TRAIN_PHOTOS, SyntheticDataModule
from corrlab.geometry.homography import warp_points


def datamodule(**kwargs) -> SyntheticDataModule:
    defaults = dict(image_size=(96, 128), num_train_pairs=8, num_val_pairs=4, num_test_pairs=4, batch_size=2)
    return SyntheticDataModule(**{**defaults, **kwargs})


def sample_at(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear colours (N, 3) of a 3 x H x W image at pixel-centre coordinates (N, 2)."""
    h, w = image.shape[-2:]
    grid = torch.stack([(points[:, 0] + 0.5) / w * 2 - 1, (points[:, 1] + 0.5) / h * 2 - 1], -1)
    return F.grid_sample(image[None], grid[None, None].float(), align_corners=False)[0, :, 0].t()


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_homography_maps_view0_content_onto_view1(split):
    dm = datamodule(photometric={"brightness": 0.0, "contrast": 0.0, "noise": 0.0})
    sample = dm.dataset(split)[1]
    h, w = sample["image0"].shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(4, h - 4.0), torch.arange(4, w - 4.0), indexing="ij")
    p0 = torch.stack([xs.flatten(), ys.flatten()], 1)
    p1 = warp_points(sample["H_0to1"].double(), p0.double()).float()
    inside = (p1[:, 0] > 2) & (p1[:, 0] < w - 3) & (p1[:, 1] > 2) & (p1[:, 1] < h - 3)
    colours0 = sample_at(sample["image0"], p0[inside])
    colours1 = sample_at(sample["image1"], p1[inside])
    has_content = colours0.sum(1) > 0.05  # skip black borders outside the photo
    error = (colours0 - colours1).abs()[has_content].mean()
    wrong = (colours0 - sample_at(sample["image1"], p0[inside])).abs()[has_content].mean()
    assert inside.float().mean() > 0.3
    assert error < 0.03, f"GT misaligned: mean colour difference {error:.3f}"
    assert wrong > 3 * error  # the identity (a wrong H) does not explain the pair


def test_contract_keys_and_shapes():
    batch = next(iter(datamodule().train_dataloader()))
    assert batch["image0"].shape == (2, 3, 96, 128) and batch["image0"].dtype == torch.float32
    assert batch["H_0to1"].shape == (2, 3, 3)
    assert batch["size0"].tolist() == [[96, 128], [96, 128]] and batch["scale1"].tolist() == [[1.0, 1.0]] * 2
    assert isinstance(batch["name"], list) and batch["name"][0].startswith("train/")
    assert 0.0 <= batch["image1"].min() and batch["image1"].max() <= 1.0


def test_val_and_test_pairs_are_fixed_by_the_seed_train_pairs_change_each_epoch():
    a, b = datamodule(seed=3), datamodule(seed=3)
    assert torch.equal(a.dataset("val")[2]["image1"], b.dataset("val")[2]["image1"])
    assert torch.equal(a.dataset("test")[0]["H_0to1"], b.dataset("test")[0]["H_0to1"])
    assert not torch.equal(datamodule(seed=4).dataset("val")[2]["H_0to1"], a.dataset("val")[2]["H_0to1"])
    train = a.dataset("train")
    first = train[0]["H_0to1"]
    assert torch.equal(train[0]["H_0to1"], first)  # a function of (seed, epoch, index): resumable
    train.set_epoch(1)
    assert not torch.equal(train[0]["H_0to1"], first)


def test_splits_use_disjoint_photos():
    dm = datamodule()
    stems = {split: {n.split("/")[1] for n in dm.pair_names(split)} for split in ("train", "val", "test")}
    assert (
        not (stems["train"] & stems["val"])
        and not (stems["train"] & stems["test"])
        and not (stems["val"] & stems["test"])
    )
    with pytest.raises(ValueError, match="disjoint"):
        datamodule(val_photos=[TRAIN_PHOTOS[0]])


def test_homography_ranges_are_respected():
    dm = datamodule(homography={"scale": [1.0, 1.0], "rotation_deg": 0.0, "perspective": 0.0, "translation": 0.0})
    assert np.allclose(dm.dataset("val")[0]["H_0to1"].numpy(), np.eye(3), atol=1e-6)
