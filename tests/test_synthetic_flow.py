"""data=synthetic_flow: image0(p) = image1(p + flow(p)) at the valid pixels for every warp family (checked by an
independent bilinear lookup), the dynamic object's own motion, a folder as data.root, and the errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from corrlab.datamodules.synthetic_flow import SyntheticFlowDataModule


def sample(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a (3, H, W) image at (N, 2) pixel positions (align_corners=True)."""
    h, w = image.shape[-2:]
    grid = torch.stack([points[:, 0] / (w - 1) * 2 - 1, points[:, 1] / (h - 1) * 2 - 1], -1)
    return F.grid_sample(image[None], grid[None, None], align_corners=True)[0, :, 0].T


def check_pair(pair: dict, inner: float = 2.0) -> float:
    """Median colour difference between image 0 and image 1 read through the flow, over valid pixels away from
    the border; also checks the mask against the flow's landing positions."""
    flow, valid = pair["flow"], pair["flow_valid"]
    h, w = flow.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    target = torch.stack([xs, ys], -1).float() + flow
    inside = (target[..., 0] >= 0) & (target[..., 0] <= w - 1) & (target[..., 1] >= 0) & (target[..., 1] <= h - 1)
    assert not (valid & ~inside).any()
    keep = valid & (target[..., 0] > inner) & (target[..., 0] < w - 1 - inner) & (target[..., 1] > inner)
    keep &= target[..., 1] < h - 1 - inner
    assert keep.float().mean() > 0.3
    read = sample(pair["image1"], target[keep])
    return (read - pair["image0"].permute(1, 2, 0)[keep]).abs().mean(-1).median().item()


@pytest.mark.parametrize("transform", ["homography", "affine", "tps"])
def test_image0_is_image1_read_through_the_flow(transform):
    dm = SyntheticFlowDataModule(transforms=[transform], num_val_pairs=2)
    for i in range(2):
        pair = dm.dataset("val")[i]
        assert pair["image0"].shape == (3, 256, 256) and pair["flow"].shape == (256, 256, 2)
        assert pair["flow"].abs().max() > 2  # a real warp, not the identity
        assert check_pair(pair) < 0.01


def test_dynamic_object_moves_independently_and_keeps_the_flow_exact():
    dm = SyntheticFlowDataModule(transforms=["affine"], dynamic=True, object_proba=1.0, num_val_pairs=3)
    static = SyntheticFlowDataModule(transforms=["affine"], dynamic=False, num_val_pairs=3)
    for i in range(3):
        pair, background = dm.dataset("val")[i], static.dataset("val")[i]
        assert check_pair(pair) < 0.01
        moved = (pair["flow"] - background["flow"]).norm(dim=-1) > 1.0
        assert 0.005 < moved.float().mean() < 0.5  # the object region has its own motion


def test_folder_root_split_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(6):
        cv2.imwrite(str(tmp_path / f"img{k}.png"), (rng.uniform(0, 255, (300, 320, 3))).astype(np.uint8))
    dm = SyntheticFlowDataModule(root=str(tmp_path), num_holdout_images=1, num_val_pairs=1)
    assert [p.name for p in dm.images["val"]] == ["img4.png"] and [p.name for p in dm.images["test"]] == ["img5.png"]
    assert len(dm.images["train"]) == 4
    assert check_pair(dm.dataset("val")[0]) < 0.05
    with pytest.raises(FileNotFoundError, match="no images"):
        SyntheticFlowDataModule(root=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="subset of"):
        SyntheticFlowDataModule(transforms=["elastic"])
    with pytest.raises(ValueError, match="multiples of 8"):
        SyntheticFlowDataModule(image_size=[250, 256])


def test_iterating_a_split_stops_after_its_pairs():
    # pairs are generated for any index, so without a bound `for pair in dataset` would never end
    pairs = SyntheticFlowDataModule(image_size=[64, 64], num_val_pairs=3).dataset("val")
    with pytest.raises(IndexError, match="out of range"):  # first: without the bound the loop below never ends
        pairs[3]
    assert [pair["name"][-5:] for pair in pairs] == ["00000", "00001", "00002"]
