"""Per-image identity: every datamodule's samples carry image0_id / image1_id, the image path relative to
the dataset root (a stable string), the same for the same pixels and different for different pixels."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from corrlab.datamodules.aligned_pairs import AlignedRealPairs
from corrlab.datamodules.ap10k import AP10KDataModule
from corrlab.datamodules.ap10k_pairs import write_pairs
from corrlab.datamodules.eth3d import ETH3DDataModule
from corrlab.datamodules.hpatches import HPatchesDataModule
from corrlab.datamodules.megadepth import MegaDepthDataModule
from corrlab.datamodules.pfpascal import PFPascalDataModule
from corrlab.datamodules.pump_mix import PumpMixDataModule
from corrlab.datamodules.spair import SPairDataModule
from corrlab.datamodules.synthetic import SyntheticDataModule
from tests.helpers.eth3d_fixture import frame_path, write_eth3d
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.hpatches_gcm_fixture import write_hpatches_gcm
from tests.helpers.megadepth_fixture import write_megadepth
from tests.helpers.semantic_fixtures import write_ap10k, write_pfpascal, write_spair
from tests.test_pump_data import write_fixture as write_aligned_pairs


def ids_of(dataset) -> list[tuple[str, str]]:
    samples = [dataset[i] for i in range(len(dataset))]
    for sample in samples:
        assert isinstance(sample["image0_id"], str) and isinstance(sample["image1_id"], str)
    return [(s["image0_id"], s["image1_id"]) for s in samples]


def assert_same_id_same_pixels(dataset) -> None:
    """Two samples showing one id show the same image; two ids never show one file twice in a pair."""
    seen: dict[str, torch.Tensor] = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        assert sample["image0_id"] != sample["image1_id"]
        for side in (0, 1):
            key, image = sample[f"image{side}_id"], sample[f"image{side}"]
            if key in seen:
                assert torch.equal(seen[key], image), key
            seen[key] = image


def test_hpatches_ids_are_paths_under_the_root_in_both_layouts(tmp_path):
    release = HPatchesDataModule(root=str(write_hpatches(tmp_path / "release"))).dataset("test")
    ids = ids_of(release)
    first_sequence = release.pairs[0][0].name
    assert ids[0] == (f"{first_sequence}/1.ppm", f"{first_sequence}/2.ppm")
    assert {a for a, _ in ids if a.startswith(first_sequence)} == {f"{first_sequence}/1.ppm"}  # image 1 of every pair
    assert_same_id_same_pixels(release)
    gcm = HPatchesDataModule(root=str(write_hpatches_gcm(tmp_path / "gcm"))).dataset("test")
    sequence, k = gcm.pairs[0]
    expected = gcm[0]["image1_id"]
    assert expected == sequence.image_path(k).relative_to(gcm.root).as_posix() and expected.endswith(f"_{k}.ppm")


def test_synthetic_ids_name_the_pair_and_the_view_and_the_epoch_in_training():
    dm = SyntheticDataModule(image_size=(64, 64), num_train_pairs=2, num_val_pairs=2, num_test_pairs=2)
    assert ids_of(dm.dataset("val"))[1] == ("val/coins/00001/view0", "val/coins/00001/view1")
    train = dm.dataset("train")
    before = train[0]["image0_id"]
    train.set_epoch(3)
    assert (
        before == "train/astronaut/00000/epoch0/view0" and train[0]["image0_id"] == "train/astronaut/00000/epoch3/view0"
    )


def test_megadepth_ids_are_the_index_image_paths(tmp_path):
    root = write_megadepth(tmp_path / "megadepth")
    dm = MegaDepthDataModule(root=str(root), eval_resize={"mode": "long", "size": 120})
    dataset = dm.dataset("test")
    ids = ids_of(dataset)
    i0, i1 = dataset.index.pairs[0]
    assert ids[0] == (str(dataset.index.images[i0]), str(dataset.index.images[i1]))
    assert all((root / a).is_file() and (root / b).is_file() for a, b in ids)
    assert_same_id_same_pixels(dataset)


def test_eth3d_ids_are_target_then_source_paths(tmp_path):
    root = write_eth3d(tmp_path / "eth3d")
    dataset = ETH3DDataModule(root=str(root), scenes=["lakeside"], rates=[3]).dataset("test")
    ids = ids_of(dataset)
    assert ids[0] == (frame_path("lakeside", 3), frame_path("lakeside", 0))  # image0 is the target
    assert_same_id_same_pixels(dataset)


def test_keypoint_pair_ids_are_image_paths_and_mark_mirrored_images(tmp_path):
    write_spair(tmp_path / "spair")
    spair = SPairDataModule(root=str(tmp_path / "spair"))
    assert ids_of(spair.dataset("test"))[0] == ("JPEGImages/cat/2010_000001.jpg", "JPEGImages/cat/2010_000002.jpg")
    assert ids_of(spair.dataset("val"))[0] == ("JPEGImages/cat/2010_000002.jpg", "JPEGImages/cat/2010_000001.jpg")

    write_pfpascal(tmp_path / "pascal")
    pascal = PFPascalDataModule(root=str(tmp_path / "pascal"), flip_probability=0.0, train_resize={"mode": "none"})
    plain, flipped = ids_of(pascal.dataset("train"))  # the training CSV's flip column: the same pair mirrored
    assert plain == ("PF-dataset-PASCAL/JPEGImages/2009_000001.jpg", "PF-dataset-PASCAL/JPEGImages/2009_000002.jpg")
    assert flipped == tuple(f"{p}#mirrored" for p in plain)
    assert_same_id_same_pixels(pascal.dataset("train"))

    root = tmp_path / "ap-10k"
    write_ap10k(root)
    write_pairs(root, root / "PairAnnotation", seed=42)
    ap10k = AP10KDataModule(root=str(root)).dataset("test")
    uses = defaultdict(int)
    for image0, image1 in ids_of(ap10k):
        assert image0.startswith("data/") and image0.endswith(".jpg") and (root / image0).is_file()
        uses[image0] += 1
        uses[image1] += 1
    assert max(uses.values()) > 1  # images recur across pairs: what a per-image cache is for


def test_random_crops_name_their_draw_and_batches_keep_ids_as_strings(tmp_path):
    torch.manual_seed(0)
    root = write_aligned_pairs(tmp_path / "aligned", pairs=1)
    crops = AlignedRealPairs(root, num_pairs=1, crop=64)
    first, second = crops[0]["image0_id"], crops[0]["image0_id"]
    assert first != second and first.startswith("real/a0_b0/00000/draw")  # a new crop each call, a new id
    mix = PumpMixDataModule(
        root=str(root), num_web=1, num_real_homography=1, num_real=1, synthetic={"image_size": [64, 64]}, batch_size=3
    )
    batch = next(iter(mix.train_dataloader()))
    assert len(set(batch["image0_id"])) == 3 and all(isinstance(i, str) for i in batch["image1_id"])


def test_eval_batches_carry_one_id_per_pair():
    dm = SyntheticDataModule(image_size=(32, 32), num_test_pairs=3, eval_batch_size=2)
    batches = list(dm.test_dataloader())
    assert [b["image0_id"] for b in batches] == [
        ["test/chelsea/00000/view0", "test/rocket/00001/view0"],
        ["test/chelsea/00002/view0"],
    ]


@pytest.mark.slow
def test_dense_hpatches_ids_mark_the_image_resized_to_another_size(tmp_path):
    from corrlab.datamodules.hpatches_dense import HPatchesDenseDataModule
    from tests.conftest import shared_data
    from tests.test_dense_flow import write_dense_fixture

    root, _ = write_dense_fixture(tmp_path / "hp", ["v_london"])
    csv_dir = str(shared_data("hpatches", "glunet_csv"))
    dataset = HPatchesDenseDataModule(str(root), csv_dir, on_missing="skip").dataset("test")
    ids = ids_of(dataset)
    # image k (the target) at its own size; image 1 resized to image k's size, which differs for every k
    h, w = dataset[0]["image0"].shape[-2:]
    assert ids[0] == ("v_london/2.ppm", f"v_london/1.ppm#{h}x{w}") and len({b for _, b in ids}) == 5
    assert_same_id_same_pixels(dataset)
    at_240 = HPatchesDenseDataModule(str(root), csv_dir, image_size=[240, 240], on_missing="skip").dataset("test")
    assert ids_of(at_240)[2] == ("v_london/4.ppm#240x240", "v_london/1.ppm#240x240")
    assert_same_id_same_pixels(at_240)


def test_synthetic_flow_ids_name_the_pair_and_the_view_and_the_epoch_in_training():
    from corrlab.datamodules.synthetic_flow import SyntheticFlowDataModule

    dm = SyntheticFlowDataModule(image_size=(64, 64), num_val_pairs=2, num_test_pairs=2)
    test = dm.dataset("test")
    names = test.pair_names()
    assert ids_of(test) == [(f"{n}/view0", f"{n}/view1") for n in names]
    train = dm.dataset("train")
    train.set_epoch(3)
    assert train[0]["image0_id"] == f"{train.pair_names()[0]}/epoch3/view0"
