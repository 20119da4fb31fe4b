"""Third-party noise kept out of corrlab's console and log files: messages that tell a user nothing about their run."""

from __future__ import annotations

import logging
import re
import warnings

# (logger, message pattern) pairs dropped from the logs
NOISE_LOGS = (
    ("lightning.pytorch.utilities.rank_zero", r"💡 Tip:"),
    ("lightning.fabric.utilities.rank_zero", r"💡 Tip:"),
    ("lightning.pytorch.utilities.rank_zero", r"Trainer already configured with model summary callbacks"),
    ("torch.utils.cpp_extension", r"No CUDA runtime is found, using CUDA_HOME"),
    ("torch.utils.flop_counter", r"triton not found; flop counting will not work"),  # eval.py leaves Triton out
)
# warnings raised inside third-party code about its own internals
NOISE_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",)


class DropMessages(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def quiet_third_party() -> None:
    """Install the filters (idempotent)."""
    for name, pattern in NOISE_LOGS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(DropMessages(pattern))
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
