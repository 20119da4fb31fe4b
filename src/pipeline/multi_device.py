"""Evaluation export on several devices (eval.py devices=N): N processes (gloo; one GPU each where there are
GPUs) predict disjoint shares of the pairs into shard files, which are merged into the run's single
predictions.h5 in pair order; the benchmark then scores once from that cache, so the numbers are those of one
device."""

from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path
from urllib.parse import quote

import h5py
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import DictConfig, OmegaConf

from corrlab.pipeline.prediction_cache import PredictionCache


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_device(cfg: DictConfig, rank: int) -> torch.device:
    """CPU, or the rank's GPU (cuda:<rank>) when the run is on CUDA."""
    from corrlab.pipeline.evaluate import resolve_device

    device = resolve_device(cfg.device)
    return torch.device(f"cuda:{rank}") if device.type == "cuda" else device


def export_share(rank: int, world: int, port: int, config: dict, source: dict, shards: str) -> None:
    """One process: its share of the pairs (the evaluation loader's distributed split) into shards/<rank>.h5."""
    from corrlab.pipeline.evaluate import autocast, build_module
    from corrlab.pipeline.instantiate import instantiate

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        cfg = OmegaConf.create(config)
        torch.manual_seed(cfg.seed)
        device = worker_device(cfg, rank)
        datamodule = instantiate(cfg.data)
        benchmark = datamodule.make_benchmark(cfg.split)
        module, loaded = build_module(cfg, device)
        loader = {"val": datamodule.val_dataloader, "test": datamodule.test_dataloader}[cfg.split]()
        with PredictionCache(Path(shards) / f"{rank}.h5", source) as shard, torch.inference_mode():
            shard.file.attrs["provenance"] = json.dumps(loaded)
            for batch in loader:
                batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
                with autocast(module, str(cfg.precision), device):
                    matches = benchmark.predict(module, batch)
                shard.write(benchmark.prediction_kind, batch, matches, keep_warp=benchmark.scores_warp)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def export_on_devices(cfg: DictConfig, cache: PredictionCache, kind: str, pair_names: list[str]) -> int:
    """Predict the pairs of the split on `cfg.devices` processes and merge them into `cache` in pair order
    (a pair the loader repeats to even out the shares is taken once).  Returns the number of pairs exported."""
    world = int(cfg.devices)
    if world > 1 and resolve_cuda(cfg) and torch.cuda.device_count() < world:
        raise ValueError(f"devices={world} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    config = OmegaConf.to_container(cfg, resolve=True)
    with tempfile.TemporaryDirectory(dir=cache.path.parent, prefix=".shards_") as shards:
        mp.spawn(export_share, args=(world, free_port(), config, cache.source, shards), nprocs=world, join=True)
        files = [h5py.File(Path(shards) / f"{rank}.h5", "r") for rank in range(world)]
        try:
            cache.file.attrs["provenance"] = files[0].attrs["provenance"]
            group = cache.file[kind] if kind in cache.file else cache.file.create_group(kind, track_order=True)
            for name in pair_names:
                key = quote(name, safe="")
                source = next((f[kind] for f in files if kind in f and key in f[kind]), None)
                if source is None:
                    raise RuntimeError(f"pair {name} was predicted by none of the {world} processes")
                if key in group:
                    del group[key]
                source.copy(source[key], group, name=key)
            cache.file.flush()
        finally:
            for handle in files:
                handle.close()
    return len(pair_names)


def resolve_cuda(cfg: DictConfig) -> bool:
    return str(cfg.device).startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())


def check_devices(cfg: DictConfig) -> int:
    """The number of export processes; several need the prediction cache to gather into."""
    world = int(cfg.get("devices", 1))
    if world < 1:
        raise ValueError(f"devices must be >= 1, got {world}")
    if world > 1 and not (cfg.predictions or cfg.save_predictions):
        raise ValueError(f"devices={world} gathers the predictions in predictions.h5: keep save_predictions=true")
    return world
