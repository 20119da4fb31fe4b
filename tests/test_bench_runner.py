"""The bench runner measures each case's own peak memory and reports ratios against the baseline."""

from __future__ import annotations

import sys

from bench.runner import Case, run_cases


def test_runner_measures_peak_memory_per_case(tmp_path):
    allocate = f'{sys.executable} -c "import numpy as np; a = np.ones({{}} * 2**20, np.uint8); print(a.sum())"'
    results = run_cases(
        [Case("big", allocate.format(400)), Case("small", allocate.format(20))],
        baseline="big",
        repeat=1,
        json_path=tmp_path / "bench.json",
    )
    big, small = results
    assert big.returncode == 0 and small.returncode == 0
    assert big.peak_rss_bytes > 400 * 2**20 > small.peak_rss_bytes
    assert (tmp_path / "bench.json").is_file()
