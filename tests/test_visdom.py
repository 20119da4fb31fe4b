"""The Visdom logger: window layout, buffering while the server is away, and a real server end to end."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import lightning as L
import pytest

from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.train import train
from corrlab.tracking.visdom_logger import VisdomLogger, window_and_trace
from corrlab.tracking.visdom_sender import Point, VisdomSender
from tests.conftest import compose_config
from tests.helpers.training import csv_metric, tiny_run_config
from tests.helpers.visdom_server import VisdomServer

ENV = "corrlab_test"


def test_window_and_trace():
    assert window_and_trace("train/total") == ("total", "train/total")
    assert window_and_trace("val/total") == ("total", "val/total")
    assert window_and_trace("val/mma@3") == ("mma", "val/mma@3")
    assert window_and_trace("val/i/mma@10") == ("i/mma", "val/i/mma@10")
    assert window_and_trace("lr-Adam") == ("lr-Adam", "lr-Adam")


class FakeVisdom:
    """Records line() calls; raises ConnectionError while `up` is clear; blocks while `gate` is clear."""

    def __init__(self) -> None:
        self.up, self.gate = threading.Event(), threading.Event()
        self.up.set()
        self.gate.set()
        self.points: list[tuple[str, str, float, float]] = []

    def _check(self) -> None:
        self.gate.wait()
        if not self.up.is_set():
            raise ConnectionError("Error connecting to Visdom server")

    def line(self, Y, X, win, env, name, update):
        self._check()
        self.points += [(win, name, float(x), float(y)) for x, y in zip(X, Y)]

    def update_window_opts(self, win, opts, env):
        self._check()

    def save(self, envs):
        self._check()


def test_sender_keeps_the_newest_points_within_the_bound_and_warns_once(caplog):
    """Two traces, 2 points per step, room for 6: what survives an outage is the last 3 steps of both
    traces, also after failed rounds put undelivered points back in the buffer."""
    fake = FakeVisdom()
    sender = VisdomSender(lambda: fake, env=ENV, max_points=6, retry_initial_s=0.01, retry_max_s=0.05)
    fake.up.clear()

    def log_step(step: int) -> None:
        sender.add_points(
            [Point("total", "train/total", step, 10.0 + step), Point("nce", "train/nce", step, 20.0 + step)], {}
        )

    with caplog.at_level(logging.WARNING, logger="corrlab.tracking.visdom_sender"):
        for step in range(6):
            log_step(step)
        assert not sender.flush(0.3)  # server down: rounds fail and put their points back
        log_step(6)
        fake.up.set()
        assert sender.flush(5.0)
        sender.close(1.0)
    assert sorted(fake.points) == sorted(
        [("total", "train/total", s, 10.0 + s) for s in (4, 5, 6)]
        + [("nce", "train/nce", s, 20.0 + s) for s in (4, 5, 6)]
    )
    assert [p[2] for p in fake.points if p[1] == "train/total"] == [4, 5, 6]  # in order
    assert sender.dropped == 8 and sender.outages == 1
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1


class RejectingVisdom(FakeVisdom):
    """Fails (not a connection error) on the trace named 'bad'."""

    def line(self, Y, X, win, env, name, update):
        if name == "bad":
            raise ValueError("bad")
        super().line(Y, X, win, env, name, update)


def test_an_item_the_server_rejects_is_dropped_not_retried(caplog):
    fake = RejectingVisdom()
    sender = VisdomSender(lambda: fake, env=ENV)
    with caplog.at_level(logging.WARNING, logger="corrlab.tracking.visdom_sender"):
        sender.add_points([Point("a", "bad", 0, 1.0), Point("b", "good", 0, 2.0)], {})
        assert sender.flush(5.0)
        sender.add_points([Point("b", "good", 1, 3.0)], {})
        assert sender.close(5.0)
    assert fake.points == [("b", "good", 0.0, 2.0), ("b", "good", 1.0, 3.0)]
    assert "dropped 'bad' (ValueError: bad)" in caplog.text


def test_logging_never_waits_for_a_hanging_server():
    fake = FakeVisdom()
    fake.gate.clear()  # every request hangs
    logger = VisdomLogger(env=ENV, max_buffered_points=10_000)
    logger._connect = lambda: fake
    worker = threading.Thread(
        target=lambda: [logger.log_metrics({"train/total": float(s)}, step=s) for s in range(1000)]
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "log_metrics blocked on the server"
    fake.gate.set()
    logger.finalize("success")
    assert [p[2] for p in fake.points] == list(range(1000))


# --- a real server ------------------------------------------------------------------------------
SERVERS: dict[int, VisdomServer] = {}


class ServerControl(L.Callback):
    """Test-only: after batch i, `kill` the server (once everything so far is delivered) or `start`
    it (and wait until the buffer is delivered)."""

    def __init__(self, port: int, actions: dict[int, str]) -> None:
        self.server = SERVERS[port]
        self.actions = {int(k): v for k, v in actions.items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        (visdom,) = [logger for logger in trainer.loggers if isinstance(logger, VisdomLogger)]
        action = self.actions.get(batch_idx)
        if action == "kill":
            assert visdom.sender.flush(30)
            self.server.kill()
        elif action == "start":
            self.server.start()
            assert visdom.sender.flush(30)


@pytest.fixture
def visdom_server(tmp_path):
    server = VisdomServer(tmp_path / "visdom_envs")
    SERVERS[server.port] = server
    yield server
    server.stop()
    del SERVERS[server.port]


def visdom_run(output_dir: Path, server: VisdomServer, *overrides: str, actions: dict[int, str] | None = None):
    callbacks = (
        {"server_control": {"_target_": f"{__name__}.ServerControl", "port": server.port, "actions": actions}}
        if actions
        else None
    )
    cfg = tiny_run_config(
        output_dir,
        "logger=[csv,visdom]",
        f"logger.visdom.port={server.port}",
        f"logger.visdom.env={ENV}",
        "logger.visdom.retry_initial_s=0.05",
        "logger.visdom.retry_max_s=0.2",
        "logger.visdom.persist_every_s=0",
        *overrides,
        callbacks=callbacks,
    )
    return train(cfg)


@pytest.mark.slow
def test_training_run_reads_back_from_the_server(visdom_server, tmp_path):
    metrics = visdom_run(tmp_path, visdom_server.start(), "trainer.max_steps=4")
    traces = visdom_server.traces(ENV, "total")
    steps = csv_metric(tmp_path, "train/total")
    assert list(steps) == [0, 1, 2, 3]
    assert traces["train/total"] == (list(map(float, steps)), list(steps.values()))  # all values, in order
    mma = visdom_server.traces(ENV, "mma")
    assert sorted(mma) == [f"val/mma@{t}" for t in sorted(range(1, 11), key=str)]
    assert mma["val/mma@3"][1] == [pytest.approx(metrics["val/mma@3"])]
    assert visdom_server.traces(ENV, "score")["val/score"][1] == [pytest.approx(metrics["val/score"])]
    hparams = visdom_server.window(ENV, "hparams")
    assert hparams["title"] == "hyperparameters" and "&quot;seed&quot;: 42" in hparams["content"]
    image = visdom_server.window(ENV, "val/matches")
    assert image["type"] == "image" and image["content"]["src"].startswith("data:image/png;base64,")


@pytest.mark.slow
def test_server_down_at_start_gets_everything_once_it_is_up(visdom_server, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="corrlab.tracking.visdom_sender"):
        visdom_run(tmp_path, visdom_server, "trainer.max_steps=4", actions={2: "start"})
    steps = csv_metric(tmp_path, "train/total")
    assert visdom_server.traces(ENV, "total")["train/total"] == (list(map(float, steps)), list(steps.values()))
    assert "seed" in visdom_server.window(ENV, "hparams")["content"]
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.slow
def test_server_killed_and_restarted_loses_only_what_exceeds_the_buffer(visdom_server, tmp_path, caplog):
    """3 scalars per step; the server is down while steps 1-4 are logged (12 points) and the buffer
    holds 6, so steps 1 and 2 are dropped; everything before (saved by the server) and after is there."""
    with caplog.at_level(logging.INFO, logger="corrlab.tracking.visdom_sender"):
        visdom_run(
            tmp_path,
            visdom_server.start(),
            "trainer.max_steps=8",
            "data.num_train_pairs=16",
            "logger.visdom.max_buffered_points=6",
            actions={1: "kill", 5: "start"},
        )
    steps = csv_metric(tmp_path, "train/total")
    assert list(steps) == list(range(8))
    for key in ("train/total", "train/nce"):
        kept = {s: v for s, v in csv_metric(tmp_path, key).items() if s not in (1, 2)}
        assert visdom_server.traces(ENV, key.split("/")[1])[key] == (list(map(float, kept)), list(kept.values()))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again; sent 6 buffered points (6 dropped)" in m for m in messages) == 1
    assert json.loads((visdom_server.env_path / f"{ENV}.json").read_text())["jsons"]["total"]


@pytest.mark.slow
def test_eval_sends_metrics_table_and_figures(visdom_server, tmp_path):
    visdom_server.start()
    cfg = compose_config(
        "eval",
        [
            "model=sift",
            "data=synthetic",
            "logger=visdom",
            f"logger.visdom.port={visdom_server.port}",
            f"logger.visdom.env={ENV}",
            "data.num_test_pairs=2",
            "data.image_size=[96,128]",
        ],
        tmp_path,
    )
    summary = evaluate(cfg)
    assert visdom_server.traces(ENV, "mma")["test/mma@3"] == ([0.0], [pytest.approx(summary["metrics"]["mma@3"])])
    table = visdom_server.window(ENV, "test/per_pair")["content"]
    assert "<th>name</th>" in table and "test/chelsea/00000" in table and "test/rocket/00001" in table
    assert visdom_server.window(ENV, "test/matches/1")["type"] == "image"
    assert visdom_server.window(ENV, "test/mma")["type"] == "image"
