"""The published HPatches MMA caches (image-matching-toolbox, r2d2) read into curves and plotted beside ours."""

from __future__ import annotations

import json

import numpy as np
import pytest

from corrlab.tracking.mma_reference import main, read_immatch_cache, read_summary_curve
from tests.conftest import shared_data


def test_patch2pix_cache_gives_the_published_curve():
    cache = shared_data("reference_results", "immatch_hpatches_cache")
    reference = read_immatch_cache(cache / "Patch2Pix.im1024.m0.5.npy")
    assert reference.num_pairs == {"i": 260, "v": 280, "all": 540}
    assert reference.curves["all"][3.0] == pytest.approx(0.8123, abs=1e-4)  # Patch2Pix io 0.5, imsize 1024
    for curve in reference.curves.values():
        values = [curve[t] for t in sorted(curve)]
        assert (
            sorted(curve) == [float(t) for t in range(1, 16)]
            and values == sorted(values)
            and 0 < values[0] <= values[-1] <= 1
        )
    strict = read_immatch_cache(cache / "Patch2Pix.im1024.m0.9.npy")
    ncnet = read_immatch_cache(cache / "NCNet.im1024.m0.9.npy")
    assert strict.curves["all"][1.0] > reference.curves["all"][1.0] > ncnet.curves["all"][1.0]


def test_cache_format_read_by_hand(tmp_path):
    # the toolbox's format: per-threshold sums of per-pair MMA for i and v pairs, then per-pair statistics
    cache = np.empty(3, dtype=object)
    cache[0], cache[1] = {1: 0.5, 2: 1.0, 3: 1.6}, {1: 0.3, 2: 1.2, 3: 2.4}
    cache[2] = [np.array(["i", "i", "v", "v", "v"]), np.full(10, 500), np.array([10, 20, 30, 40, 50])]
    np.save(tmp_path / "method.npy", cache, allow_pickle=True)
    reference = read_immatch_cache(tmp_path / "method.npy")
    assert reference.num_pairs == {"i": 2, "v": 3, "all": 5}
    assert reference.curves["i"] == pytest.approx({1.0: 0.25, 2.0: 0.5, 3.0: 0.8})
    assert reference.curves["v"] == pytest.approx({1.0: 0.1, 2.0: 0.4, 3.0: 0.8})
    assert reference.curves["all"] == pytest.approx({1.0: 0.16, 2.0: 0.44, 3.0: 0.8})
    assert reference.mean_matches == pytest.approx(30.0)


def test_every_cached_method_reads(tmp_path):
    for folder in ("immatch_hpatches_cache", "r2d2_hpatches"):
        for path in sorted(shared_data("reference_results", folder).glob("*.npy")):
            assert read_immatch_cache(path).num_pairs["all"] == 540, path.name
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="bad.npy"):
        read_immatch_cache(tmp_path / "bad.npy")


def test_plot_command_draws_ours_beside_the_published(tmp_path):
    cache = shared_data("reference_results", "immatch_hpatches_cache")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"metrics": {f"mma@{t}": t / 10 for t in range(1, 11)} | {"i/mma@1": 0.5}}))
    assert read_summary_curve(summary, "all") == {float(t): t / 10 for t in range(1, 11)}
    with pytest.raises(ValueError, match="no v MMA"):
        read_summary_curve(summary, "v")
    out = main(
        [
            "--cache",
            str(cache),
            "--methods",
            "Patch2Pix.im1024.m0.5",
            "NCNet.im1024.m0.9",
            "--ours",
            f"ours={summary}",
            "--out",
            str(tmp_path / "mma.png"),
        ]
    )
    assert out.stat().st_size > 10_000
