"""Choosing a benchmark: the conf/benchmark group by name, the fit between a benchmark and the data, and the
datamodule's default when none is chosen."""

from __future__ import annotations

import functools
from collections.abc import Callable

import hydra
from omegaconf import OmegaConf

from corrlab.benchmarks.base import Benchmark, BenchmarkData
from corrlab.config.schema import CONFIG_DIR

BENCHMARK_DIR = CONFIG_DIR / "benchmark"
BenchmarkFactory = Callable[..., Benchmark]


def benchmark_names() -> list[str]:
    """The options of the conf/benchmark group."""
    return sorted(p.stem for p in BENCHMARK_DIR.glob("*.yaml"))


def benchmark_factory(name: str) -> BenchmarkFactory:
    """The benchmark conf/benchmark/<name>.yaml instantiates (a partial waiting for the data)."""
    path = BENCHMARK_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown benchmark '{name}'; choose one of {', '.join(benchmark_names())}")
    return hydra.utils.instantiate(OmegaConf.load(path), _convert_="all")


def benchmark_class(factory: BenchmarkFactory) -> type[Benchmark]:
    """The Benchmark class behind a factory (a functools.partial of it, or the class itself)."""
    target = factory.func if isinstance(factory, functools.partial) else factory
    if not (isinstance(target, type) and issubclass(target, Benchmark)):
        raise TypeError(f"a benchmark config must instantiate a partial of a Benchmark class, got {factory!r}")
    return target


def misfit(cls: type[Benchmark], data: BenchmarkData) -> str | None:
    """Why a benchmark class cannot score this data (None: it can)."""
    missing = [k for k in cls.required_ground_truth if k not in data.ground_truth]
    if missing:
        return f"needs the ground truth {', '.join(missing)}, which data '{data.dataset}' does not give"
    facts = [k for k in cls.required_facts if k not in data.facts]
    if facts:
        return f"needs {', '.join(facts)} of the dataset, which data '{data.dataset}' does not describe"
    return None


def fitting_benchmarks(data: BenchmarkData) -> list[str]:
    """The names of the conf/benchmark options that can score this data."""
    names = []
    for name in benchmark_names():
        target = OmegaConf.load(BENCHMARK_DIR / f"{name}.yaml").get("_target_")
        if target and misfit(hydra.utils.get_class(target), data) is None:
            names.append(name)
    return names


def build_benchmark(factory: BenchmarkFactory, data: BenchmarkData, name: str = "") -> Benchmark:
    """The benchmark of one split; a benchmark that does not fit the data fails naming the ones that do."""
    cls = benchmark_class(factory)
    problem = misfit(cls, data)
    if problem is not None:
        label = name or (factory.keywords.get("name") if isinstance(factory, functools.partial) else cls.__name__)
        raise ValueError(
            f"benchmark '{label}' ({cls.__name__}) {problem} (it gives {', '.join(data.ground_truth)}); "
            f"benchmarks that fit {data.dataset}: {', '.join(fitting_benchmarks(data)) or 'none'}"
        )
    return factory(data=data)
