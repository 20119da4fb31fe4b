"""Every datamodule trains through the base's resumable loader (exact mid-epoch resume, tests/test_resume.py):
none builds its own training DataLoader, as MegaDepth's once did (it then restarted the epoch on resume)."""

from __future__ import annotations

import importlib
import pkgutil

import corrlab.datamodules
from corrlab.datamodules.base import PairDataModule


def all_subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in (direct, *all_subclasses(direct))}


def test_no_datamodule_replaces_the_resumable_training_loader():
    for module in pkgutil.iter_modules(corrlab.datamodules.__path__, "corrlab.datamodules."):
        importlib.import_module(module.name)
    datamodules = {cls for cls in all_subclasses(PairDataModule) if cls.__module__.startswith("corrlab.")}
    assert len(datamodules) >= 12  # every dataset of conf/data, training or not
    for cls in datamodules:  # a datamodule changes the order of its pairs through train_sampler (an EpochSampler)
        why = f"{cls.__name__} replaces the base's resumable training loader; override train_sampler instead"
        assert cls.train_dataloader is PairDataModule.train_dataloader, why
        assert cls._loader is PairDataModule._loader, why
