"""Third-party noise is filtered from corrlab's logs; corrlab's own and other messages pass."""

from __future__ import annotations

import logging
import warnings

from lightning.pytorch.utilities.rank_zero import rank_zero_info

from corrlab.pipeline.quiet import quiet_third_party


def test_lightning_tips_and_cuda_home_notice_are_dropped(caplog):
    quiet_third_party()
    quiet_third_party()  # idempotent
    caplog.set_level(logging.INFO)
    rank_zero_info("💡 Tip: For seamless cloud logging and experiment tracking, try installing litlogger")
    rank_zero_info("GPU available: False, used: False")
    logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found, using CUDA_HOME='/usr/local'")
    logging.getLogger("torch.utils.cpp_extension").warning("Error building extension 'pyramid'")
    assert [r.getMessage() for r in caplog.records] == [
        "GPU available: False, used: False",
        "Error building extension 'pyramid'",
    ]
    assert len(logging.getLogger("lightning.pytorch.utilities.rank_zero").filters) == 2


def test_lightning_internal_deprecation_is_dropped():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_third_party()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`", DeprecationWarning
        )
        warnings.warn("a user-facing deprecation", DeprecationWarning)
    assert [str(w.message) for w in caught] == ["a user-facing deprecation"]
