"""Every config group option composes; typos fail at composition naming the valid keys."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from corrlab.config.overrides import UnknownConfigKeyError, check_overrides
from corrlab.pipeline.instantiate import ConfigArgumentError, instantiate_method
from tests.conftest import CONFIG_DIR, compose_config


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


TRAIN_GROUPS = ["model", "data", "trainer", "logger", "callbacks", "debug", "experiment"]


@pytest.mark.parametrize("group,option", [(g, o) for g in TRAIN_GROUPS for o in options(g)])
def test_train_config_composes(group, option, tmp_path):
    cfg = compose_config("train", [f"{group}={option}"], tmp_path)
    OmegaConf.to_container(cfg, resolve=True)
    assert cfg.paths.output_dir == str(tmp_path)


@pytest.mark.parametrize("group,option", [(g, o) for g in ("model", "data") for o in options(g)])
def test_eval_config_composes(group, option, tmp_path):
    cfg = compose_config("eval", [f"{group}={option}"], tmp_path)
    OmegaConf.to_container(cfg, resolve=True)


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(UnknownConfigKeyError) as error:
        check_overrides(CONFIG_DIR, "train", ["trainer.max_epoch=3"])
    message = str(error.value)
    assert "trainer.max_epoch" in message and "max_epochs" in message and "Did you mean 'max_epochs'" in message
    with pytest.raises(UnknownConfigKeyError, match="Valid keys at the top level: .*seed"):
        check_overrides(CONFIG_DIR, "eval", ["sed=3"])


def test_valid_overrides_pass_the_check():
    check_overrides(CONFIG_DIR, "train", ["trainer.max_epochs=3", "data.batch_size=4", "+tags=[a]"])
    check_overrides(CONFIG_DIR, "train", ["-m", "seed=1,2"])  # sweeps are left to Hydra


def test_wrong_group_option_lists_the_choices(tmp_path):
    with pytest.raises(MissingConfigException, match="Available options in 'data'"):
        compose_config("eval", ["data=hpatchez"], tmp_path)


def test_wrong_type_fails_at_composition(tmp_path):
    with pytest.raises(ConfigCompositionException):
        compose_config("train", ["trainer.max_epochs=lots"], tmp_path)


def test_unexpected_constructor_argument_names_the_valid_ones(tmp_path):
    cfg = compose_config("eval", ["+model.ratios=0.7"], tmp_path)
    with pytest.raises(ConfigArgumentError, match="Valid arguments of corrlab.modules.sift.SIFTMatcher: .*ratio"):
        instantiate_method(cfg.model)
