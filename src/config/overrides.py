"""Check command-line overrides before Hydra runs, so a mistyped key names the valid ones and a value of
the wrong type names the expected type."""

from __future__ import annotations

import difflib
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from corrlab.config.schema import register_configs

TYPE_NAMES = {int: "an integer", float: "a number", bool: "a boolean (true or false)", str: "a string"}
# keys that moved: old full key -> new full key (the semantic protocol's parameters went to the benchmark)
MOVED_KEYS = {
    "data.convention": "benchmark.convention",
    "data.threshold": "benchmark.threshold",
    "data.alphas": "benchmark.alphas",
}


class ConfigOverrideError(KeyError):
    """A command-line override the config cannot take."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownConfigKeyError(ConfigOverrideError):
    """An override names a key that the composed config does not have."""


class ConfigTypeError(ConfigOverrideError):
    """An override gives a key a value of the wrong type."""


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


def moved_key_message(full_key: str, overrides: list[str]) -> str:
    """'<old key> moved: write <new key>=<value>'."""
    given = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+~").split("=", 1)[0] == full_key), "...")
    return f"Config key '{full_key}' moved: write {MOVED_KEYS[full_key]}={given} (the benchmark owns its parameters: conf/benchmark/<name>.yaml)."


def wrong_type_message(full_key: str, overrides: list[str], node: object) -> str:
    """'<key>=<value>': the expected type of the key (from its structured config), the value given."""
    given = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+~").split("=", 1)[0] == full_key), "?")
    ref_type = node._metadata.ref_type if hasattr(node, "_metadata") else None
    expected = TYPE_NAMES.get(ref_type, getattr(ref_type, "__name__", str(ref_type)))
    if hasattr(node, "_is_optional") and node._is_optional():
        expected += " or null"
    return f"Wrong type for config key '{full_key}': it takes {expected}, got '{given}'."


def check_overrides(config_dir: Path, config_name: str, overrides: list[str]) -> None:
    """Compose once with the overrides; on an unknown key raise UnknownConfigKeyError naming the
    valid keys, on a value of the wrong type ConfigTypeError naming the expected type.  Sweeps and
    Hydra flags are left to Hydra."""
    if any(o.startswith("-") for o in overrides):
        return
    register_configs()  # the schemas the configs' defaults name
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
            if full_key in MOVED_KEYS:
                raise UnknownConfigKeyError(moved_key_message(full_key, overrides)) from None
            parent_key = full_key.rpartition(".")[0]
            valid_overrides = [o for o in overrides if not o.lstrip("+~").startswith(full_key)]
            try:
                base = compose(config_name=config_name, overrides=valid_overrides)
            except ConfigCompositionException:
                return
            node = OmegaConf.select(base, parent_key) if parent_key else base
            if not isinstance(node, DictConfig):
                return
            leaf = full_key.rpartition(".")[2]
            if isinstance(key_error, ValidationError) and leaf in node:
                raise ConfigTypeError(wrong_type_message(full_key, overrides, node._get_node(leaf))) from None
            raise UnknownConfigKeyError(unknown_key_message(full_key, list(node.keys()))) from None
