"""PUMP's training data: overlapping-crop selection from correspondences, the aligned real pairs
dataset (SfM120k layout; a generated fixture and the real MegaDepth pair), the training mix."""

from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest
import torch

from corrlab.datamodules.aligned_pairs import AlignedRealPairs
from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.overlap_crop import choose_windows, flip_corres, local_scale_rotation, swap_corres
from corrlab.datamodules.pump_mix import PumpMixDataModule
from corrlab.geometry.depth import reproject_points
from corrlab.geometry.scale_rotation_code import decode_scale_rot, encode_scale_rot
from tests.conftest import shared_data
from tests.helpers.pump_mix_fixture import grid_corres, similarity
from tests.helpers.pump_mix_fixture import write_aligned_pairs as write_fixture


def test_local_scale_and_rotation_are_recovered_from_plain_correspondences():
    corres = grid_corres(similarity(1.5, 20, 30, -10), 200, 240)
    scale, rotation = local_scale_rotation(corres, np.random.default_rng(0))
    assert np.allclose(scale, 1.5, atol=1e-6) and np.allclose(rotation, 20, atol=1e-4)


def test_windows_show_the_same_content_at_the_same_size():
    H = similarity(2.0, 0, 40, 20)  # image 2 sees everything twice larger
    corres = grid_corres(H, 300, 300)
    (rows1, cols1), (rows2, cols2) = choose_windows(
        corres, np.full(len(corres), 2.0), 64, (300, 300), (700, 700), np.random.default_rng(1)
    )
    assert (rows1.stop - rows1.start, cols1.stop - cols1.start) == (64, 64)
    assert (rows2.stop - rows2.start, cols2.stop - cols2.start) == (128, 128)
    centre1 = np.array([(cols1.start + cols1.stop) / 2, (rows1.start + rows1.stop) / 2])
    centre2 = np.array([(cols2.start + cols2.stop) / 2, (rows2.start + rows2.stop) / 2])
    assert np.abs(centre1 @ H[:2, :2].T + H[:2, 2] - centre2).max() <= 2


def test_swap_and_flip_keep_codes_consistent():
    corres = np.array([[10.0, 20.0, 30.0, 40.0, 1.0, float(encode_scale_rot(2.0, 45))]])
    swapped = swap_corres(corres)
    assert swapped[0, :4].tolist() == [30.0, 40.0, 10.0, 20.0]
    scale, rotation = decode_scale_rot(swapped[0, 5].astype(np.int64))
    assert scale == pytest.approx(0.5) and rotation == -45
    flipped = flip_corres(corres, 100, 200)
    assert flipped[0, :4].tolist() == [89.0, 20.0, 169.0, 40.0]
    assert decode_scale_rot(flipped[0, 5].astype(np.int64))[1] == -45


def test_aligned_pairs_serve_crops_without_ground_truth(tmp_path):
    torch.manual_seed(0)
    dataset = AlignedRealPairs(write_fixture(tmp_path), num_pairs=5, crop=96)
    sample = dataset[3]
    assert sample["image0"].shape == (3, 96, 96) and sample["image1"].shape == (3, 96, 96)
    assert torch.isnan(sample["H_0to1"]).all()
    assert sample["image0"].std() > 0.05 and sample["image1"].std() > 0.05  # real content, not the black fallback
    assert sample["name"] == "real/a1_b1/00003" and len(dataset.pair_names()) == 5


def test_aligned_pairs_crops_are_related_by_the_pair_transform(tmp_path):
    dataset = AlignedRealPairs(
        write_fixture(tmp_path, pairs=1), num_pairs=1, crop=96, p_swap=0, p_flip=0, scale_jitter=0, noise=0
    )
    image1, image2, corres = dataset.load(0)
    H = similarity(1.3, 10, 20, -15)  # the fixture's image 1 -> image 2
    for seed in range(3):
        crop1, crop2, (((rows1, cols1), (rows2, cols2)), turns) = dataset.crops(
            image1, image2, corres, np.random.default_rng(seed)
        )
        assert turns == 0
        # crop pixel -> image pixel (pixel centres), through H, -> pixel of crop 2: resample crop 2 onto crop 1
        ys, xs = np.mgrid[0:96, 0:96].astype(np.float64)
        s1 = ((cols1.stop - cols1.start) / 96, (rows1.stop - rows1.start) / 96)
        s2 = ((cols2.stop - cols2.start) / 96, (rows2.stop - rows2.start) / 96)
        x1, y1 = cols1.start + (xs + 0.5) * s1[0] - 0.5, rows1.start + (ys + 0.5) * s1[1] - 0.5
        x2, y2 = H[0, 0] * x1 + H[0, 1] * y1 + H[0, 2], H[1, 0] * x1 + H[1, 1] * y1 + H[1, 2]
        u, v = (x2 - cols2.start + 0.5) / s2[0] - 0.5, (y2 - rows2.start + 0.5) / s2[1] - 0.5
        resampled = cv2.remap(
            crop2.astype(np.float32), u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR, borderValue=-1
        )
        seen = (resampled >= 0).all(-1) & (crop1.sum(-1) > 0)
        assert seen.mean() > 0.3  # the windows overlap
        assert np.corrcoef(crop1[seen].ravel(), resampled[seen].ravel())[0, 1] > 0.9


def test_aligned_pairs_errors_name_the_layout_and_the_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="list_pairs.txt"):
        AlignedRealPairs(tmp_path, num_pairs=1)
    root = write_fixture(tmp_path / "data", pairs=1)
    (root / "corres" / "a0.png_b0.jpg.npy").unlink()
    with pytest.raises(UnreadableFileError, match="a0.png_b0.jpg.npy"):
        AlignedRealPairs(root, num_pairs=1)[0]
    (root / "list_pairs.txt").write_text("only_one_path.png\n")
    with pytest.raises(UnreadableFileError, match="line 1"):
        AlignedRealPairs(root, num_pairs=1)


def test_training_mix_batches_both_kinds_of_pairs(tmp_path):
    torch.manual_seed(0)
    module = PumpMixDataModule(
        root=str(write_fixture(tmp_path)),
        num_web=2,
        num_real_homography=2,
        num_real=3,
        synthetic={"image_size": [96, 96], "num_val_pairs": 2},
        batch_size=7,
    )
    batch = next(iter(module.train_dataloader()))
    finite = torch.isfinite(batch["H_0to1"]).flatten(1).all(1)
    assert batch["image0"].shape == (7, 3, 96, 96)
    assert finite.sum() == 4 and (~finite).sum() == 3
    assert module.make_benchmark("val").spec()["dataset"] == "synthetic"
    assert len(module.dataset("val")) == 2


def test_aligned_pairs_on_the_real_megadepth_pair(tmp_path):
    source = shared_data("megadepth", "loftr_pytorch_sample")
    info = np.load(source / "sample.npz", allow_pickle=True)
    (i0, i1), *_ = info["pair_infos"][0]
    names = [str(p).split("/")[-1] for p in info["image_paths"][[i0, i1]]]
    depths = [torch.from_numpy(h5py.File(source / n.replace(".jpg", ".h5"), "r")["depth"][()]).double() for n in names]
    K0, K1 = (torch.from_numpy(info["intrinsics"][i]).double() for i in (i0, i1))
    P0, P1 = (torch.from_numpy(info["poses"][i]).double() for i in (i0, i1))
    h, w = depths[0].shape
    ys, xs = torch.meshgrid(torch.arange(8, h, 24.0), torch.arange(8, w, 24.0), indexing="ij")
    p0 = torch.stack([xs.flatten(), ys.flatten()], 1).double()
    p1, valid = reproject_points(p0, depths[0], K0, P1 @ torch.linalg.inv(P0), K1, depths[1])
    root = tmp_path / "megadepth_pairs"
    (root / "ims").mkdir(parents=True)
    (root / "corres").mkdir()
    for n in names:
        (root / "ims" / n).symlink_to(source / n)
    np.save(root / "corres" / f"{names[0]}_{names[1]}.npy", torch.cat([p0[valid], p1[valid]], 1).float().numpy())
    (root / "list_pairs.txt").write_text(f"{names[0]} {names[1]}\n")
    torch.manual_seed(0)
    batch = collate_pairs([AlignedRealPairs(root, num_pairs=2, crop=128)[i] for i in range(2)])
    assert batch["image0"].shape == (2, 3, 128, 128)
    assert (batch["image0"].flatten(1).std(1) > 0.05).all() and (batch["image1"].flatten(1).std(1) > 0.05).all()
