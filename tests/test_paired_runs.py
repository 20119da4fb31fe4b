"""bench/paired_runs.py: rounds interleave the sides, and the summary is the median of per-round ratios."""

from __future__ import annotations

from bench.paired_runs import median_ratio, paired_rounds, ratio_table
from bench.runner import Case


def test_rounds_interleave_the_sides_and_keep_each_run():
    calls = []
    records = paired_rounds(
        [Case("a", "true"), Case("b", "true")],
        rounds=2,
        after_run=lambda side, index: calls.append((side, index)) or {},
    )
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert len(records) == 2 and all(r["a"]["wall_s"] > 0 and "load" in r for r in records)


def test_summary_is_the_median_of_per_round_ratios():
    records = [
        {"load": 1.0, "ref": {"t": 10.0}, "ours": {"t": 5.0}},  # 2x
        {"load": 9.0, "ref": {"t": 30.0}, "ours": {"t": 30.0}},  # 1x
        {"load": 2.0, "ref": {"t": 12.0}, "ours": {"t": 3.0}},  # 4x
    ]
    # the ratio of medians would be 12 / 5 = 2.4; the median of ratios is 2
    assert median_ratio(records, "ref", "ours", "t") == 2.0
    table = ratio_table(records, "ref", ["ours"], {"t": "seconds"})
    assert "x2.00; rounds 2.00, 1.00, 4.00" in table and "[1.0, 9.0, 2.0]" in table
