"""A real Visdom server on 127.0.0.1 for tests: a free port, started and stopped explicitly."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from visdom import Visdom

START_SERVER = "from visdom.server.run_server import main; main()"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VisdomServer:
    """`python -c "<run_server main>" -port P --hostname 127.0.0.1 -bind_local -env_path D` (loopback
    only, no JavaScript download).  `kill()` simulates a crash; `start()` again restarts it on the
    same port and env_path, so it reloads the envs saved there."""

    def __init__(self, env_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env_path = Path(env_path)
        self.env_path.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30.0) -> VisdomServer:
        command = [
            sys.executable,
            "-c",
            START_SERVER,
            "-port",
            str(self.port),
            "--hostname",
            "127.0.0.1",
            "-bind_local",
            "-env_path",
            str(self.env_path),
            "-logging_level",
            "WARNING",
        ]
        log = (self.env_path / "server.log").open("a")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"visdom server exited with {self.process.returncode}; see {self.env_path / 'server.log'}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"visdom server did not listen on 127.0.0.1:{self.port} within {timeout_s} s")

    def kill(self) -> None:
        """Crash: SIGKILL, no chance to save anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def client(self) -> Visdom:
        return Visdom(server="http://127.0.0.1", port=self.port, use_incoming_socket=False, raise_exceptions=True)

    def window(self, env: str, win: str) -> dict:
        """The window's JSON as stored by the server."""
        return json.loads(self.client().get_window_data(win=win, env=env))

    def traces(self, env: str, win: str) -> dict[str, tuple[list[float], list[float]]]:
        """{trace name: (x values, y values)} of a line-plot window."""
        return {t["name"]: (t["x"], t["y"]) for t in self.window(env, win)["content"]["data"]}
