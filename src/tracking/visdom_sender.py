"""Background delivery to a Visdom server that never blocks training and survives server outages."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
from visdom import Visdom

log = logging.getLogger(__name__)


class TimeoutVisdom(Visdom):
    """Visdom client whose requests time out and fail on HTTP errors (the stock client waits forever
    and treats an error page as success)."""

    def __init__(self, *args: Any, timeout_s: float = 5.0, **kwargs: Any) -> None:
        self.timeout_s = timeout_s
        super().__init__(*args, **kwargs)

    def _handle_post(self, url: str, data: Any = None) -> str:
        response = self.session.post(url, data=data if data is not None else {}, timeout=self.timeout_s)
        response.raise_for_status()
        return response.text


@dataclass(frozen=True)
class Point:
    """One scalar for a line plot: trace `trace` of window `win` gets (x, y)."""

    win: str
    trace: str
    x: float
    y: float


Pane = Callable[[Visdom], Any]  # draws one window (text, image) from scratch; the latest per window wins
CONNECTION_ERRORS = (ConnectionError, requests.RequestException, OSError)


class VisdomSender:
    """Queues scalars and panes from the training thread and delivers them from a daemon thread.

    The training thread only appends under a lock.  Scalars wait in a buffer of at most `max_points`
    (the oldest are dropped beyond it and counted in `dropped`); a pane (hyperparameter text, image)
    keeps only its latest version.  Each round sends every buffered point, one request per trace.
    When the server is unreachable the sender warns once per outage, keeps what it could not send, and
    retries with exponential backoff from `retry_initial_s` to `retry_max_s`; on reconnect it flushes
    the buffer and redraws every pane and window title (a restarted server may have lost them).  The
    env is saved on the server (`Visdom.save`, to its -env_path) at most every `persist_every_s`
    seconds and on close, so a restarted server reloads it.
    """

    def __init__(
        self,
        connect: Callable[[], Visdom],
        env: str,
        max_points: int = 100_000,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        persist_every_s: float = 60.0,
        describe: str = "Visdom server",
    ) -> None:
        self.connect = connect
        self.env = env
        self.max_points = max_points
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.persist_every_s = persist_every_s
        self.describe = describe
        self.dropped = 0
        self.sent_points = 0
        self.outages = 0
        self._points: deque[Point] = deque()
        self._panes: dict[str, Pane] = {}
        self._drawn: dict[str, Pane] = {}
        self._window_opts: dict[str, dict[str, Any]] = {}
        self._titled: set[str] = set()
        self._client: Visdom | None = None
        self._connected = True
        self._backoff_s = retry_initial_s
        self._retry_at = 0.0
        self._last_persist = 0.0
        self._dirty = False
        self._busy = False
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="visdom-sender", daemon=True)
        self._thread.start()

    # --- called from the training thread ------------------------------------------------------
    def add_points(self, points: list[Point], window_opts: dict[str, dict[str, Any]]) -> None:
        with self._cond:
            for win, opts in window_opts.items():
                self._window_opts.setdefault(win, opts)
            self._points.extend(points)
            overflow = len(self._points) - self.max_points
            for _ in range(max(overflow, 0)):
                self._points.popleft()
            self.dropped += max(overflow, 0)
            self._cond.notify()

    def set_pane(self, win: str, pane: Pane) -> None:
        with self._cond:
            self._panes[win] = pane
            self._cond.notify()

    def flush(self, timeout_s: float) -> bool:
        """Retry now and wait until everything queued so far is delivered; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._retry_at = 0.0
            self._cond.notify()
            while self._points or self._panes or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def close(self, timeout_s: float) -> bool:
        """Flush (bounded by timeout_s), save the env on the server and stop the thread."""
        delivered = self.flush(timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=max(timeout_s, 1.0))
        if not delivered:
            log.warning(
                "%s: %d points and %d panes could not be delivered before the end of the run",
                self.describe,
                len(self._points),
                len(self._panes),
            )
        return delivered

    # --- the delivery thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not (self._points or self._panes) or time.monotonic() < self._retry_at):
                    wait = self._retry_at - time.monotonic() if (self._points or self._panes) else None
                    self._cond.wait(wait if wait is None or wait > 0 else 0.01)
                if self._closing:
                    break
                points, self._points = list(self._points), deque()
                panes, self._panes = self._panes, {}
                self._busy = True
            try:
                unsent_points, unsent_panes = self._deliver(points, panes)
            except Exception as error:  # noqa: BLE001 - e.g. a client that cannot be built from the config
                log.error(
                    "%s: delivery failed (%s: %s); %d points dropped",
                    self.describe,
                    type(error).__name__,
                    error,
                    len(points),
                )
                unsent_points, unsent_panes = [], {}
            with self._cond:
                self._busy = False
                if unsent_points or unsent_panes:
                    self._requeue(unsent_points, unsent_panes)
                self._cond.notify_all()
        self._persist(force=True)

    def _requeue(self, points: list[Point], panes: dict[str, Pane]) -> None:
        """Put undelivered items back in front of newer ones, keeping the newest max_points."""
        merged = points + list(self._points)
        overflow = max(len(merged) - self.max_points, 0)
        self.dropped += overflow
        self._points = deque(merged[overflow:])
        self._panes = {**panes, **self._panes}

    def _deliver(self, points: list[Point], panes: dict[str, Pane]) -> tuple[list[Point], dict[str, Pane]]:
        """Send one round; return what was not delivered (everything from the first failure on)."""
        traces: dict[tuple[str, str], list[Point]] = {}
        for point in points:
            traces.setdefault((point.win, point.trace), []).append(point)
        pending = list(traces.items())
        reconnecting = not self._connected
        if reconnecting:  # the server may have restarted empty: redraw every pane and title
            self._titled.clear()
            for win, pane in self._drawn.items():
                panes.setdefault(win, pane)
        try:
            client = self._client_or_connect()
            while pending:
                (win, trace), group = pending[0]
                xs, ys = np.array([p.x for p in group]), np.array([p.y for p in group])
                self._attempt(
                    lambda: client.line(Y=ys, X=xs, win=win, env=self.env, name=trace, update="append"), trace
                )
                pending.pop(0)
                self.sent_points += len(group)
                if win not in self._titled:
                    opts = self._window_opts.get(win, {"title": win})
                    self._attempt(lambda: client.update_window_opts(win=win, opts=opts, env=self.env), f"{win} title")
                    self._titled.add(win)
            for win in list(panes):
                self._attempt(lambda: panes[win](client), win)
                self._drawn[win] = panes.pop(win)
            if reconnecting:
                self._connected = True
                log.info(
                    "%s reachable again; sent %d buffered points (%d dropped)", self.describe, len(points), self.dropped
                )
            self._dirty = True
            self._persist(force=False)
        except CONNECTION_ERRORS as error:
            self._on_failure(error)
            unsent = {key for key, _ in pending}
            return [p for p in points if (p.win, p.trace) in unsent], panes  # in logging order
        self._backoff_s = self.retry_initial_s
        return [], {}

    def _attempt(self, request: Callable[[], Any], what: str) -> None:
        """One request: a connection error propagates (the round is retried later); any other error
        (a value the server rejects) drops that item with a warning instead of retrying it forever."""
        try:
            request()
        except CONNECTION_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - the delivery thread must survive anything
            log.warning("%s: dropped '%s' (%s: %s)", self.describe, what, type(error).__name__, error)

    def _client_or_connect(self) -> Visdom:
        if self._client is None:
            self._client = self.connect()
        return self._client

    def _on_failure(self, error: BaseException) -> None:
        if self._connected:
            self.outages += 1
            log.warning(
                "%s unreachable (%s); training continues, buffering up to %d points and retrying with backoff from %g s to %g s",
                self.describe,
                error,
                self.max_points,
                self.retry_initial_s,
                self.retry_max_s,
            )
        self._connected = False
        self._retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self.retry_max_s)

    def _persist(self, force: bool) -> None:
        if not self._dirty or self._client is None or not self._connected:
            return
        now = time.monotonic()
        if not force and now - self._last_persist < self.persist_every_s:
            return
        try:
            self._client.save([self.env])
            self._last_persist = now
            self._dirty = False
        except CONNECTION_ERRORS as error:
            log.warning("%s: could not save env '%s' (%s)", self.describe, self.env, error)
