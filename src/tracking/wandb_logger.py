"""W&B through Lightning's WandbLogger, offline automatically when no credentials are configured."""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


def wandb_credentials_found(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether W&B can log in: WANDB_API_KEY or WANDB_IDENTITY_TOKEN_FILE is set, or the netrc file
    ($NETRC or ~/.netrc, which `wandb login` writes) has an entry for the W&B host."""
    if environ.get("WANDB_API_KEY") or environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class AutoOfflineWandbLogger(WandbLogger):
    """Lightning's WandbLogger (all its arguments apply); with `offline=None` it runs offline when
    WANDB_MODE is offline/dryrun or no credentials are found, instead of prompting for an API key.
    `close()` (train.py and eval.py call it at the end) finishes the run and, offline, logs the
    `wandb sync <run dir>` command that uploads it later."""

    def __init__(self, offline: bool | None = None, **kwargs: Any) -> None:
        if offline is None:
            offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not wandb_credentials_found()
        super().__init__(offline=offline, **kwargs)
        self.offline = offline

    @rank_zero_only
    def close(self) -> str | None:
        """Finish the run; return (and log) the sync command when it was offline."""
        if self._experiment is None:
            return None
        sync_dir = getattr(getattr(self._experiment, "settings", None), "sync_dir", None)
        self._experiment.finish()
        self._experiment = None
        if not self.offline or not sync_dir:
            return None
        command = f"wandb sync {sync_dir}"
        log.info("W&B run saved offline; upload it with: %s", command)
        return command
