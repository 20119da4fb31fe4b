"""AP-10K: pairs written once from the original annotations with GeoAware-SC's recipe (counts computed by
hand for the fixture), reproducible from the seed, then read like SPair."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from corrlab.datamodules import ap10k
from corrlab.datamodules.ap10k import AP10KDataModule
from corrlab.datamodules.ap10k_pairs import main, write_pairs
from corrlab.datamodules.errors import DatasetNotFoundError
from tests.helpers.oracle_transfer import OracleTransfer
from tests.helpers.semantic_fixtures import write_ap10k


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ap10k") / "ap-10k"
    usable = write_ap10k(root)
    counts = write_pairs(root, root / "PairAnnotation", seed=42)
    return root, usable, counts


def names(root, split, folder="PairAnnotation"):
    return (root / folder / f"{split}.txt").read_text().split()


def test_pair_counts_follow_the_recipe(dataset):
    _, _, counts = dataset
    # cat: 55 usable images -> 5 train / 20 val / 30 test; lion: 12 test; dog: 6 test, of which images 4 and 5
    # share no labelled keypoint.  Intra-species: all val/test combinations, train min(50 x 5, 10) = 10.
    # Cross-species (Felidae only): 30 x 12 = 360 < 900.  Cross-family: 42 x 6 = 252 candidates, 30 sampled.
    assert counts == {
        "trn": 10,
        "val": 190,
        "test": 435 + 66 + 14,
        "val_cross_species": 0,
        "test_cross_species": 360,
        "val_cross_family": 0,
        "test_cross_family": 30,
    }


def test_splits_crowding_and_visibility_rules(dataset):
    root, usable, _ = dataset
    cat = usable["cat"]
    test_images = {s for n in names(root, "test") for s in ap10k.stems(n)[:2]}
    train_images = {s for n in names(root, "trn") for s in ap10k.stems(n)[:2]}
    assert train_images == set(cat[:5]) and set(cat[-30:]) <= test_images and not set(cat[5:25]) & test_images
    assert set(usable["dog"]) <= test_images
    all_images = {
        s
        for split in ("trn", "val", "test", "test_cross_species", "test_cross_family")
        for n in names(root, split)
        for s in ap10k.stems(n)[:2]
    }
    assert "000000000074" not in all_images and "000000000075" not in all_images  # crowded, 2 keypoints
    dog4, dog5 = usable["dog"][4], usable["dog"][5]
    assert not {f"{dog4}-{dog5}:dog", f"{dog5}-{dog4}:dog"} & set(names(root, "test"))
    assert {ap10k.stems(n)[2] for n in names(root, "test_cross_species")} == {"Felidae"}
    assert {ap10k.stems(n)[2] for n in names(root, "test_cross_family")} == {"all"}


def test_same_seed_same_pairs_other_seed_other_sample(dataset, tmp_path):
    root, _, _ = dataset
    write_pairs(root, tmp_path / "again", seed=42)
    write_pairs(root, tmp_path / "other", seed=7)
    for split in ("trn", "test", "test_cross_family"):
        assert names(tmp_path, split, "again") == names(root, split)
    assert names(tmp_path, "test_cross_family", "other") != names(root, "test_cross_family")
    first = names(root, "test")[0]
    assert (tmp_path / "again" / "test" / f"{first}.json").read_text() == (
        root / "PairAnnotation" / "test" / f"{first}.json"
    ).read_text()


def test_pairs_are_written_once(dataset, tmp_path, capsys):
    root, _, _ = dataset
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_pairs(root, root / "PairAnnotation")
    main(["--root", str(root), "--out", str(tmp_path / "cli"), "--seed", "42"])
    assert json.loads(capsys.readouterr().out)["test_cross_family"] == 30
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["recipe"]["test_per_species"] == 30


def test_datamodule_reads_pairs_like_spair(dataset):
    root, _, _ = dataset
    dm = AP10KDataModule(root=str(root), setting="cross-family")
    name = dm.pair_names("test")[0]
    record = json.loads((root / "PairAnnotation" / "test_cross_family" / f"{name}.json").read_text())
    original = {}
    for split in ("train", "val", "test"):
        data = json.loads((root / "annotations" / f"ap10k-{split}-split1.json").read_text())
        original.update({a["image_id"]: a for a in data["annotations"]})
    source = original[int(ap10k.stems(name)[0])]
    sample = dm.dataset("test")[0]
    assert sample["kpts0"].shape == (17, 2) and sample["category"] == "all"
    ids = sample["kpts_valid"].nonzero()[:, 0].tolist()
    assert ids == [int(i) for i in record["kps_ids"]]
    keypoints = torch.tensor(source["keypoints"], dtype=torch.float32).reshape(17, 3)
    assert torch.allclose(sample["kpts0"][ids], keypoints[ids, :2])
    assert sample["bbox0"].tolist() == [2.0, 3.0, 22.0, 18.0]  # COCO x, y, w, h -> x1, y1, x2, y2
    benchmark = dm.make_benchmark("test")
    for batch in dm.test_dataloader():
        benchmark.update(batch, benchmark.predict(OracleTransfer(), batch))
    metrics = benchmark.compute()
    assert metrics["num_pairs"] == 30 and metrics["pck@0.01"] == 1.0 and metrics["geo/pck_kpt@0.01"] == 1.0
    assert benchmark.spec()["setting"] == "cross-family" and benchmark.spec()["pair_recipe"]["seed"] == 42


def test_missing_pairs_and_verify(dataset, tmp_path):
    root, _, _ = dataset
    with pytest.raises(DatasetNotFoundError, match="python -m corrlab.datamodules.ap10k_pairs --root"):
        AP10KDataModule(root=str(root), pairs=str(tmp_path / "none")).dataset("test")
    assert ap10k.verify(root) == []
    problems = ap10k.verify(root, pairs=tmp_path / "none")
    assert len(problems) == 7 and "trn.txt" in problems[0]


def test_manifest_counts_what_was_dropped_and_warns_of_empty_splits(dataset, tmp_path, caplog):
    root, usable, counts = dataset
    manifest = json.loads((root / "PairAnnotation" / "manifest.json").read_text())
    # the fixture: one crowded cat image with 2 animals, one cat with 2 labelled keypoints
    assert manifest["dropped_annotations"] == {
        "several_animals_in_image": 2,
        "crowd_list": 0,
        "too_few_keypoints": 1,
        "crowd_list_entries_matching_no_image": 0,
    }
    assert manifest["empty_splits"] == ["val_cross_species", "val_cross_family"]
    assert manifest["missing_annotation_files"] == []
    crowd = tmp_path / "crowd.txt"
    dog = usable["dog"]
    crowd.write_text(f"{dog[0]}.jpg\ndata/{dog[1]}.jpg\n{dog[2]}\n999999999999.jpg\n")
    with caplog.at_level(logging.WARNING):
        again = write_pairs(root, tmp_path / "crowd", seed=42, crowd_list=crowd)
    dropped = json.loads((tmp_path / "crowd" / "manifest.json").read_text())["dropped_annotations"]
    assert dropped["crowd_list"] == 3 and dropped["crowd_list_entries_matching_no_image"] == 1
    assert again["test"] == counts["test"] - 14 + 2  # dog: 6 test images -> 3, 14 pairs -> 2 (dogs 4, 5 share none)
    assert "no pairs in val_cross_species, val_cross_family" in caplog.text


def test_pairs_from_the_annotation_files_present_with_a_warning(dataset, tmp_path, caplog):
    root, _, _ = dataset
    partial = tmp_path / "ap-10k"
    (partial / "annotations").mkdir(parents=True)
    (partial / "data").symlink_to(root / "data")
    for split in ("train", "test"):
        name = f"ap10k-{split}-split1.json"
        (partial / "annotations" / name).write_text((root / "annotations" / name).read_text())
    with caplog.at_level(logging.WARNING):
        counts = write_pairs(partial, partial / "PairAnnotation", seed=42)
    assert sum(counts.values()) > 0
    assert "lacks annotations/ap10k-val-split1.json" in caplog.text
    manifest = json.loads((partial / "PairAnnotation" / "manifest.json").read_text())
    assert manifest["missing_annotation_files"] == ["ap10k-val-split1.json"]
    (partial / "annotations" / "ap10k-train-split1.json").unlink()
    (partial / "annotations" / "ap10k-test-split1.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="has none of annotations/"):
        write_pairs(partial, partial / "other")


def test_samples_carry_each_image_s_own_keypoints_also_those_the_other_lacks(dataset):
    root, _, _ = dataset
    original = {}
    for path in (root / "annotations").glob("ap10k-*-split1.json"):
        record = json.loads(path.read_text())
        stems = {image["id"]: image["file_name"].removesuffix(".jpg") for image in record["images"]}
        original |= {stems[a["image_id"]]: torch.tensor(a["keypoints"]).view(17, 3) for a in record["annotations"]}
    data = AP10KDataModule(root=str(root)).dataset("test")
    own_only = 0
    for index in [i for i, name in enumerate(data.names) if name.endswith(":dog")]:  # dogs label various ids
        sample = data[index]
        for side, stem in enumerate(ap10k.stems(sample["name"])[:2]):
            visible = original[stem][:, 2] > 0
            assert sample[f"kpts_image_valid{side}"].tolist() == visible.tolist()
            assert torch.allclose(sample[f"kpts_image{side}"][visible], original[stem][visible, :2].float())
            assert not sample[f"kpts_image{side}"][~visible].any()
        own_only += int((sample["kpts_image_valid0"] & ~sample["kpts_valid"]).sum())
    assert own_only > 0  # source keypoints invisible in the target are there
