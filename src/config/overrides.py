"""Check command-line overrides before Hydra runs, so a mistyped key names the valid ones."""

from __future__ import annotations

import difflib
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class UnknownConfigKeyError(KeyError):
    """An override names a key that the composed config does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


def _key_error(error: BaseException) -> OmegaConfBaseException | None:
    while error is not None:
        if isinstance(error, OmegaConfBaseException) and getattr(error, "full_key", None):
            return error
        error = error.__cause__ or error.__context__
    return None


def unknown_key_message(full_key: str, valid: list[str]) -> str:
    parent, _, leaf = full_key.rpartition(".")
    where = f"'{parent}'" if parent else "the top level"
    message = f"Unknown config key '{full_key}'. Valid keys at {where}: {', '.join(sorted(valid))}."
    close = difflib.get_close_matches(leaf, valid, n=1)
    if close:
        message += f" Did you mean '{close[0]}'?"
    return message + f" (To add a new key on purpose, write +{full_key}=...)"


def check_overrides(config_dir: Path, config_name: str, overrides: list[str]) -> None:
    """Compose once with the overrides; on an unknown key raise UnknownConfigKeyError naming the
    valid keys.  Sweeps and Hydra flags are left to Hydra."""
    if any(o.startswith("-") for o in overrides):
        return
    parsed = OverridesParser.create().parse_overrides(overrides)
    if any(o.is_sweep_override() for o in parsed):
        return
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        try:
            compose(config_name=config_name, overrides=overrides)
        except ConfigCompositionException as error:
            key_error = _key_error(error)
            if key_error is None:
                return
            full_key = key_error.full_key
            parent_key = full_key.rpartition(".")[0]
            valid_overrides = [o for o in overrides if not o.lstrip("+~").startswith(full_key)]
            try:
                base = compose(config_name=config_name, overrides=valid_overrides)
            except ConfigCompositionException:
                return
            node = OmegaConf.select(base, parent_key) if parent_key else base
            if isinstance(node, DictConfig):
                raise UnknownConfigKeyError(unknown_key_message(full_key, list(node.keys()))) from None
