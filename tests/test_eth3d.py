"""data=eth3d and its protocol on a fixture in the GLU-Net / DenseMatching layout (tests/helpers/eth3d_fixture.py)."""

from __future__ import annotations

import math
import pickle
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from corrlab.datamodules.catalog import get
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.eth3d import ETH3DDataModule, ETH3DPairs
from corrlab.datamodules.eth3d_index import target_grid_correspondences
from corrlab.datamodules.resize import ResizePolicy
from corrlab.matches import Matches
from corrlab.modules.base import MatchingModule
from tests.helpers.eth3d_fixture import FIXTURE_RATES, FIXTURE_SCENES, write_eth3d

SCENES = list(FIXTURE_SCENES)


@pytest.fixture(scope="module")
def eth3d_root(tmp_path_factory) -> Path:
    return write_eth3d(tmp_path_factory.mktemp("eth3d"))


def datamodule(root: Path, **kwargs) -> ETH3DDataModule:
    return ETH3DDataModule(root=str(root), scenes=SCENES, rates=list(FIXTURE_RATES), **kwargs)


class GroundTruthMatcher(MatchingModule):
    """Matches = the batch's GT correspondences, kpts1 shifted by `shift[name prefix]`; no matches for `drop`."""

    requires_weights = False

    def __init__(self, shift: dict[str, tuple[float, float]] | None = None, drop: str | None = None) -> None:
        super().__init__()
        self.shift, self.drop = shift or {}, drop

    def match(self, batch: dict) -> Matches:
        parts = []
        for b, name in enumerate(batch["name"]):
            if self.drop and name.startswith(self.drop):
                continue
            kpts0, kpts1 = batch["kpts0"][b], batch["kpts1"][b].clone()
            for prefix, offset in self.shift.items():
                if name.startswith(prefix):
                    kpts1 += torch.tensor(offset)
            parts.append(Matches(kpts0, kpts1, torch.ones(len(kpts0)), torch.full((len(kpts0),), b)))
        return Matches.concat(parts)


def run_protocol(dm: ETH3DDataModule, module: MatchingModule) -> tuple[dict, list[dict]]:
    benchmark = dm.make_benchmark("test")
    records = []
    for batch in dm.test_dataloader():
        records += benchmark.update(batch, benchmark.predict(module, batch))
    return benchmark.compute(), records


def test_ground_truth_follows_densematching_target_grid():
    """Target points are rounded to their pixel (half to even, as np.round), the source point keeps the
    un-rounded displacement, a second point on the same pixel replaces the first, outside points go."""
    entry = {
        "Xt": [10.4, 20.5, 10.2, 99.7, -0.6],
        "Yt": [5.6, 7.5, 6.4, 3.0, 2.0],
        "Xs": [12.0, 25.0, 13.0, 50.0, 1.0],
        "Ys": [6.0, 9.0, 7.0, 1.0, 2.0],
    }
    target, source = target_grid_correspondences(entry, (50, 100))
    assert target.tolist() == [[20, 8], [10, 6]]  # 20.5 -> 20, 7.5 -> 8; (10.4, 5.6) replaced by (10.2, 6.4)
    assert np.allclose(source, [[20 + 4.5, 8 + 1.5], [10 + 2.8, 6 + 0.6]], atol=1e-5)


def test_dataset_index_direction_and_batch(eth3d_root):
    dm = datamodule(eth3d_root)
    dataset = dm.dataset("test")
    assert len(dataset) == 2 * 2 * 2
    assert dataset.pair_names()[:2] == ["rate3/lakeside/001000-001003", "rate3/lakeside/001005-001008"]
    batch = next(iter(dm.test_dataloader()))
    assert batch["image0"].shape == (1, 3, 240, 320) and batch["kpts0"].shape == batch["kpts1"].shape
    assert torch.equal(batch["kpts0"], batch["kpts0"].round())  # queries sit on target pixels
    entry = pickle.loads((eth3d_root / "info_ETH3D_files" / "lakeside_every_5_rate_of_3").read_bytes())[0]
    assert batch["kpts0"].shape[1] == len(entry["Xt"]) - 2  # the duplicate replaced one point, one lies outside

    # image0 is the target frame: image0 at kpts0 shows what image1 shows at kpts1, not what it shows at kpts0
    def colours(image, points):
        h, w = image.shape[-2:]
        grid = torch.stack([(points[:, 0] + 0.5) / w * 2 - 1, (points[:, 1] + 0.5) / h * 2 - 1], -1)
        return torch.nn.functional.grid_sample(image[None], grid[None, None], align_corners=False)[0, :, 0].t()

    image0, image1, kpts0, kpts1 = batch["image0"][0], batch["image1"][0], batch["kpts0"][0], batch["kpts1"][0]
    right = (colours(image0, kpts0) - colours(image1, kpts1)).abs().mean()
    assert right < 0.03 and (colours(image0, kpts0) - colours(image1, kpts0)).abs().mean() > 3 * right
    assert "001003" in entry["target_image"] and dataset.items[0][4] == entry["target_image"]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_oracle_scores_perfectly(eth3d_root, batch_size):
    """Also with 3 pairs per batch: ragged GT lists, queries padded for module.transfer."""
    metrics, records = run_protocol(datamodule(eth3d_root, eval_batch_size=batch_size), GroundTruthMatcher())
    assert metrics["aepe"] == pytest.approx(0, abs=1e-4) and metrics["pck@1"] == 1 and metrics["pck_pooled@1"] == 1
    assert metrics["rate5/num_pairs"] == 4 and metrics["num_pairs"] == 8 and len(records) == 8


def test_known_shift_gives_the_hand_computed_aggregation(eth3d_root):
    """A 2 px error on every point of rate3/lakeside, exact elsewhere.  rate 3: AEPE = (2 + 0) / 2 scenes = 1,
    PCK@1 per image = (0 + 1) / 2 = 0.5, pooled PCK@1 = delivery's points / all rate-3 points; rate 5 is
    perfect; the top level averages the two rates."""
    dm = datamodule(eth3d_root)
    metrics, records = run_protocol(dm, GroundTruthMatcher(shift={"rate3/lakeside": (2.0, 0.0)}))
    points = {r["name"]: r["num_points"] for r in records}
    lakeside = sum(n for k, n in points.items() if k.startswith("rate3/lakeside"))
    delivery = sum(n for k, n in points.items() if k.startswith("rate3/delivery_area"))
    assert metrics["rate3/aepe"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["rate3/pck@1"] == pytest.approx(0.5) and metrics["rate3/pck@3"] == 1.0
    assert metrics["rate3/pck_pooled@1"] == pytest.approx(delivery / (lakeside + delivery))
    assert metrics["rate5/aepe"] == pytest.approx(0, abs=1e-4) and metrics["rate5/pck@1"] == 1.0
    assert metrics["aepe"] == pytest.approx(0.5, abs=1e-4) and metrics["pck@1"] == pytest.approx(0.75)
    assert metrics["pck_pooled@1"] == pytest.approx((delivery / (lakeside + delivery) + 1) / 2)


def test_errors_are_measured_in_original_source_pixels(eth3d_root):
    """Inputs resized to half size: a 1 px batch-frame shift is a 2 px error in the original frame."""
    dm = datamodule(eth3d_root, resize={"mode": "long", "size": 160})
    metrics, _ = run_protocol(dm, GroundTruthMatcher())
    assert metrics["aepe"] == pytest.approx(0, abs=1e-3)
    metrics, _ = run_protocol(dm, GroundTruthMatcher(shift={"rate": (1.0, 0.0)}))
    assert metrics["aepe"] == pytest.approx(2.0, abs=1e-3) and metrics["pck@1"] == 0 and metrics["pck@3"] == 1


def test_a_pair_without_matches_has_infinite_error(eth3d_root):
    metrics, records = run_protocol(datamodule(eth3d_root), GroundTruthMatcher(drop="rate5/lakeside"))
    assert metrics["rate5/aepe"] == math.inf and metrics["rate5/pck@5"] == pytest.approx(0.5)
    assert metrics["rate3/aepe"] == pytest.approx(0, abs=1e-4)
    assert records[4]["name"].startswith("rate5/lakeside") and records[4]["pck@5"] == 0


def test_spec_states_direction_and_aggregation(eth3d_root):
    spec = datamodule(eth3d_root).make_benchmark("test").spec()
    assert "target" in spec["direction"] and spec["rates"] == [3, 5] and spec["pairs"]["count"] == 8
    assert spec["thresholds_px"] == [1, 3, 5] and spec["skipped"]["count"] == 0


def test_bad_input_is_named(eth3d_root, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="info_ETH3D_files"):
        ETH3DDataModule(root=str(tmp_path / "nowhere")).dataset("test")
    root = Path(shutil.copytree(eth3d_root, tmp_path / "copy"))
    (root / "multiview_testing/lakeside/images/rig_cam4/001003.png").unlink()
    with pytest.raises(UnreadableFileError, match=r"001003\.png.*1 of 8 ETH3D pairs"):
        datamodule(root).dataset("test")
    dm = datamodule(root, on_missing="skip")
    assert len(dm.dataset("test")) == 7 and dm.make_benchmark("test").spec()["skipped"]["names"] == [
        "rate3/lakeside/001000-001003"
    ]
    (root / "info_ETH3D_files" / "delivery_area_every_5_rate_of_5").write_bytes(b"junk")
    with pytest.raises(UnreadableFileError, match="delivery_area_every_5_rate_of_5"):
        datamodule(root).dataset("test")
    entries = pickle.loads((root / "info_ETH3D_files" / "lakeside_every_5_rate_of_5").read_bytes())
    del entries[1]["Xs"]
    (root / "info_ETH3D_files" / "lakeside_every_5_rate_of_5").write_bytes(pickle.dumps(entries))
    with pytest.raises(UnreadableFileError, match=r"lakeside_every_5_rate_of_5.*entry 1 lacks \['Xs'\]"):
        ETH3DDataModule(root=str(root), scenes=["lakeside"], rates=[5]).dataset("test")
    with pytest.raises(ValueError, match="no training split"):
        datamodule(eth3d_root).dataset("train")
    with pytest.raises(ValueError, match="unknown ETH3D scenes"):
        ETH3DDataModule(root=str(root), scenes=["lake"])


def test_points_are_read_lazily(tmp_path):
    """The index keeps paths only: ~16 MB of GT points on disk leave well under 1 MB in the dataset."""
    root = tmp_path / "eth3d"
    (root / "info_ETH3D_files").mkdir(parents=True)
    points = lambda: np.zeros(20_000, np.float32)  # noqa: E731  (distinct arrays: pickle stores each)
    entries = [
        {
            "source_image": f"a/{i}.png",
            "target_image": f"a/{i + 3}.png",
            "Xs": points(),
            "Ys": points(),
            "Xt": points(),
            "Yt": points(),
        }
        for i in range(50)
    ]
    (root / "info_ETH3D_files" / "lakeside_every_5_rate_of_3").write_bytes(pickle.dumps(entries))
    (root / "a").mkdir()
    for i in range(53):
        (root / "a" / f"{i}.png").write_bytes(b"")
    del entries
    tracemalloc.start()
    dataset = ETH3DPairs(root, ["lakeside"], [3], ResizePolicy())
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(dataset) == 50 and peak > 1.5e7 and retained < 1e6


def test_verify_lists_missing_scenes_and_pair_files(eth3d_root):
    report = get("eth3d").verify(eth3d_root)
    missing = {c.what for c in report.checks if not c.ok}
    assert "multiview_testing/sand_box/" in missing and "multiview_training/delivery_area/" not in missing
    files = next(c for c in report.checks if c.what.startswith("info_ETH3D_files"))
    assert files.detail == "4 of 70 present" and files.num_missing == 66
    assert next(c for c in report.checks if c.what == "images named by the pair files").ok
