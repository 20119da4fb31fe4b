"""Time the training thread spends per log_metrics call: CSVLogger vs VisdomLogger with the server up
and with it down (nothing listening on the port).  Starts and stops its own loopback Visdom server.

    python -m bench.logger_overhead [--calls 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger

from corrlab.tracking.visdom_logger import VisdomLogger
from tests.helpers.visdom_server import VisdomServer, free_port

METRICS = {"train/total": 1.0, "train/nce": 0.5, "train/skipped_steps": 0.0}


def time_calls(logger, calls: int) -> tuple[float, float]:
    """(microseconds per log_metrics call, seconds finalize took)."""
    start = time.perf_counter()
    for step in range(calls):
        logger.log_metrics(METRICS, step=step)
    per_call = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    logger.finalize("success")
    return per_call, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    calls = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as tmp:
        server = VisdomServer(Path(tmp) / "envs").start()
        try:
            results = {
                "csv": time_calls(CSVLogger(tmp, name="csv"), calls),
                "visdom, server up": time_calls(VisdomLogger(env="bench", port=server.port), calls),
            }
        finally:
            server.stop()
        down = VisdomLogger(env="bench", port=free_port(), flush_timeout_s=1.0)
        results["visdom, server down"] = time_calls(down, calls)
    baseline = results["csv"][0]
    print(f"{calls} log_metrics calls of {len(METRICS)} scalars each")
    for name, (per_call, finalize) in results.items():
        print(f"{name:22s} {per_call:8.1f} us/call  ({per_call / baseline:5.2f}x csv)  finalize {finalize:6.2f} s")


if __name__ == "__main__":
    main()
