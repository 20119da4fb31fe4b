"""hydra.utils.instantiate with errors that name the accepted arguments, and collection helpers."""

from __future__ import annotations

import inspect
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, open_dict


class ConfigArgumentError(TypeError):
    """A config passes an argument its _target_ does not accept."""


def accepted_arguments(target: str) -> list[str]:
    """Names of the keyword arguments of a _target_ class or function (walking up **kwargs to bases)."""
    obj = hydra.utils.get_object(target)
    names: list[str] = []
    classes = inspect.getmro(obj) if inspect.isclass(obj) else [obj]
    for cls in classes:
        function = cls.__init__ if inspect.isclass(obj) else cls
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            break
        names += [p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return sorted(set(names))


def instantiate(config: DictConfig, **kwargs: Any) -> Any:
    """Instantiate a `_target_` config into plain Python values (lists, dicts); an unexpected
    argument fails with the valid ones listed."""
    try:
        return hydra.utils.instantiate(config, _convert_="all", **kwargs)
    except InstantiationException as error:
        if "unexpected keyword argument" in str(error) and "_target_" in config:
            valid = ", ".join(accepted_arguments(config._target_))
            raise ConfigArgumentError(f"{error}\nValid arguments of {config._target_}: {valid}") from error
        raise


def instantiate_method(config: DictConfig) -> Any:
    """The method of a model config.  Its `input_resize` is not an argument: the datamodule applies it (data
    configs read it as `method_resize`), so the one evaluation resize happens there."""
    config = config.copy()
    with open_dict(config):
        config.pop("input_resize", None)
    return instantiate(config)


def instantiate_collection(config: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a dict config (callbacks, loggers); None gives []."""
    if not config:
        return []
    return [instantiate(node) for node in config.values() if isinstance(node, DictConfig) and "_target_" in node]
