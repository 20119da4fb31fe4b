"""Reading an offline W&B run back from its local files (the run-<id>.wandb transaction log)."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import DecodeError
from wandb.proto import wandb_internal_pb2

HEADER = struct.Struct("<4sHB")  # b":W&B", magic 0xBEE1, version
RECORD = struct.Struct("<IHB")  # crc32, length, type (LevelDB log format)
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    """Every protobuf Record of a .wandb file (LevelDB log framing in 32 KiB blocks)."""
    data = Path(path).read_bytes()
    ident, magic, _ = HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a W&B transaction log")
    offset, parts = HEADER.size, b""
    while offset + RECORD.size <= len(data):
        if BLOCK - offset % BLOCK < RECORD.size:  # block trailer padding
            offset += BLOCK - offset % BLOCK
            continue
        _, length, kind = RECORD.unpack_from(data, offset)
        offset += RECORD.size
        if (length == 0 and kind == 0) or offset + length > len(data):  # end, or a record still being written
            break
        parts += data[offset : offset + length]
        offset += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def finished_records(path: Path, timeout_s: float = 30.0) -> list[wandb_internal_pb2.Record]:
    """The records of a run once its `exit` record is written (wandb-core may still be flushing the
    file for a moment after `finish()` returns, so a read can meet a half-written record)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = list(records(path))
        except DecodeError:  # read while a record was half written: read again
            if time.monotonic() > deadline:
                raise
            found = []
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


class OfflineRun:
    """History rows, config, name, tags and files of one offline run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        (log_file,) = self.dir.glob("run-*.wandb")
        self.history: list[dict] = []
        self.config: dict = {}
        self.name = ""
        self.tags: list[str] = []
        self.project = ""
        for record in finished_records(log_file):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                self.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
            elif kind == "config":
                self.config.update({item.key: json.loads(item.value_json) for item in record.config.update})
            elif kind == "run":
                self.name, self.tags, self.project = record.run.display_name, list(record.run.tags), record.run.project
                self.config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})

    def series(self, key: str) -> dict[int, float]:
        """{trainer/global_step: value} of a logged scalar."""
        return {row["trainer/global_step"]: row[key] for row in self.history if key in row}

    def media(self, pattern: str) -> list[Path]:
        return sorted((self.dir / "files" / "media").glob(pattern))


def _key(item: wandb_internal_pb2.HistoryItem) -> str:
    return item.key or "/".join(item.nested_key)


def offline_run_dirs(save_dir: Path) -> list[Path]:
    return sorted((Path(save_dir) / "wandb").glob("offline-run-*"))
