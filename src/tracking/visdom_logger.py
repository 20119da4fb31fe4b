"""Lightning logger for Visdom: live line plots, a hyperparameter pane, match figures and result tables."""

from __future__ import annotations

import html
import json
import logging
import math
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from lightning.fabric.utilities.logger import _convert_json_serializable, _convert_params, _sanitize_callable_params
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from visdom import Visdom

from corrlab.tracking.visdom_sender import Point, TimeoutVisdom, VisdomSender

STAGES = ("train", "val", "test")


def window_and_trace(key: str) -> tuple[str, str]:
    """Metric key -> (window, trace).  The stage prefix and any '@threshold' suffix leave the window
    name, so train and val of one quantity share a window and a family (mma@1..10) shares one too:
    'train/total' -> ('total', 'train/total'); 'val/i/mma@3' -> ('i/mma', 'val/i/mma@3')."""
    stage, _, rest = key.partition("/")
    name = rest if stage in STAGES and rest else key
    return name.split("@")[0], key


def read_rgb(image: Any) -> np.ndarray:
    """A path (PNG/JPEG), or an HxWx3 / 3xHxW array, as a 3xHxW uint8 array."""
    if isinstance(image, (str, Path)):
        bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read image '{image}'")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if array.ndim == 3 and array.shape[-1] in (1, 3) and array.shape[0] not in (1, 3):
        array = array.transpose(2, 0, 1)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return array


class VisdomLogger(Logger):
    """Logs to a Visdom server (rank zero only) without ever slowing training down.

    Scalars become line plots appended at each logged step, one window per metric (train and val of a
    quantity overlaid; thresholds of a family such as mma@1..10 together); hyperparameters go to a
    text pane, images (match figures) to one window per key, tables (eval.py's per-pair results) to
    an HTML pane.  Delivery runs in a background thread (VisdomSender): when the server is down the
    run warns once, keeps up to `max_buffered_points` points and retries with backoff; `finalize`
    waits at most `flush_timeout_s` for the rest.  Start a server (offline-safe) with
    `python -c "from visdom.server.run_server import main; main()" -port 8097 --hostname 127.0.0.1 -bind_local`.
    """

    def __init__(
        self,
        env: str = "corrlab",
        server: str = "http://127.0.0.1",
        port: int = 8097,
        base_url: str = "/",
        max_buffered_points: int = 100_000,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        persist_every_s: float = 60.0,
        flush_timeout_s: float = 10.0,
        request_timeout_s: float = 5.0,
        max_table_rows: int = 500,
    ) -> None:
        super().__init__()
        self.env = env
        self.server = server
        self.port = port
        self.base_url = base_url
        self.max_buffered_points = max_buffered_points
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.persist_every_s = persist_every_s
        self.flush_timeout_s = flush_timeout_s
        self.request_timeout_s = request_timeout_s
        self.max_table_rows = max_table_rows
        self._hparams: dict[str, Any] = {}
        self._sender: VisdomSender | None = None

    # --- Logger interface ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "visdom"

    @property
    def version(self) -> str:
        return self.env

    @property
    def url(self) -> str:
        return f"{self.server}:{self.port}{self.base_url.rstrip('/')}/env/{self.env}"

    @property
    def sender(self) -> VisdomSender:
        """The delivery thread, started on first use (so only rank zero ever starts one)."""
        if self._sender is None:
            self._sender = VisdomSender(
                connect=self._connect,
                env=self.env,
                max_points=self.max_buffered_points,
                retry_initial_s=self.retry_initial_s,
                retry_max_s=self.retry_max_s,
                persist_every_s=self.persist_every_s,
                describe=f"Visdom server {self.server}:{self.port}",
            )
        return self._sender

    @property
    def experiment(self) -> VisdomSender:
        return self.sender

    def _connect(self) -> Visdom:
        logging.getLogger("visdom").setLevel(logging.ERROR)  # the client logs a warning per new session
        return TimeoutVisdom(
            server=self.server,
            port=self.port,
            base_url=self.base_url,
            env=self.env,
            raise_exceptions=True,
            use_incoming_socket=False,
            timeout_s=self.request_timeout_s,
        )

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        points, opts = [], {}
        for key, value in metrics.items():
            if key == "epoch":
                continue
            value = float(value)
            win, trace = window_and_trace(key)
            points.append(
                Point(win, trace, float(step if step is not None else 0), value if math.isfinite(value) else math.nan)
            )
            opts[win] = {"title": win, "xlabel": "step", "showlegend": True}
        if points:
            self.sender.add_points(points, opts)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        params = _convert_json_serializable(_sanitize_callable_params(_convert_params(params)))
        self._hparams.update(params)
        text = f"<pre>{html.escape(json.dumps(self._hparams, indent=2, default=str))}</pre>"
        env = self.env
        self.sender.set_pane(
            "hparams", lambda client: client.text(text, win="hparams", env=env, opts={"title": "hyperparameters"})
        )

    @rank_zero_only
    def log_image(self, key: str, images: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """One window per image: `key` (or `key/<i>` for several), captioned with the step."""
        env = self.env
        for i, image in enumerate(images):
            win = key if len(images) == 1 else f"{key}/{i}"
            array = read_rgb(image)
            caption = f"{win}  step {step}" if step is not None else win
            self.sender.set_pane(
                win,
                lambda client, a=array, w=win, c=caption: client.image(
                    a, win=w, env=env, opts={"title": w, "caption": c}
                ),
            )

    @rank_zero_only
    def log_table(self, key: str, columns: list[str], data: list[list[Any]], step: int | None = None) -> None:
        """An HTML table (the first `max_table_rows` rows)."""
        rows = data[: self.max_table_rows]
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
        note = f"<p>first {len(rows)} of {len(data)} rows</p>" if len(rows) < len(data) else ""
        text = f"{note}<table><tr>{head}</tr>{body}</table>"
        env = self.env
        self.sender.set_pane(key, lambda client: client.text(text, win=key, env=env, opts={"title": key}))

    @rank_zero_only
    def save(self) -> None:
        """Nothing to do: delivery is continuous (Lightning calls this after every log)."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._sender is not None:
            self._sender.close(self.flush_timeout_s)
            self._sender = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sender"] = None  # threads do not pickle (ddp_spawn); a new one starts on first use
        return state


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
