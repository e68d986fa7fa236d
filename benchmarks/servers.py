"""A server in a subprocess, as the benchmarks and the tests start it: ``python -m MODULE MODEL --port P FLAGS``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``python -m MODULE MODEL --port P FLAGS...`` in a subprocess, its log lines collected in `lines` as they come
    (and written to ``log_path`` when given); a context manager that stops it.

    ``env`` adds to its environment (``{"KERAS_BACKEND": "jax"}``), ``path`` puts directories first on its
    ``PYTHONPATH`` (for stand-in servers outside the packages).
    """

    def __init__(
        self,
        model: Path | str,
        *flags: str,
        module: str = "follower.serve",
        port: int | None = None,
        env: dict[str, str] | None = None,
        path: Sequence[Path] = (),
        log_path: Path | None = None,
    ) -> None:
        self.module = module
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        environ = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        if path:
            environ["PYTHONPATH"] = os.pathsep.join([*map(str, path), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, str(model), "--port", str(self.port), *flags],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        log = open(log_path, "w", encoding="utf-8") if log_path else None  # noqa: SIM115 (closed by _read)
        self._reader = threading.Thread(target=self._read, args=(log,), daemon=True)
        self._reader.start()

    def _read(self, log: IO[str] | None) -> None:
        try:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if log:
                    log.write(line)
                    log.flush()
        finally:
            if log:
                log.close()

    def wait_listening(self, timeout: float = START_TIMEOUT_S) -> ServerProcess:
        """Wait until the server accepts connections; stops it and raises RuntimeError, with its log, if it exits
        or does not listen within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = "\n".join(self.lines)
                    raise RuntimeError(f"{self.module} did not listen on {self.url}; its log:\n{log}") from None
                time.sleep(0.2)

    def wait_for_line(self, text: str, timeout: float = 60.0, start: int = 0) -> str:
        """The first log line from index ``start`` on that contains ``text``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if text in line:
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r}; log:\n" + "\n".join(self.lines))

    def get(self, path: str) -> str:
        """The body of ``GET path``."""
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.read().decode()

    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return json.loads(self.get("/healthz"))

    def wait_processed(self, count: int, timeout: float = 10.0) -> dict[str, Any]:
        """Poll ``/healthz`` until ``count`` frames were processed or rejected; returns the last answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health["frames_processed"] + health["frames_rejected"] >= count:
                return health
            time.sleep(0.02)
        raise AssertionError(f"server did not reach {count} frames: {self.health()}")

    def server_seconds(self) -> dict[str, tuple[float, int]]:
        """(sum of seconds, count) of the server's histograms (``/metrics``): ``latency`` (arrival to decision)
        and each stage."""
        pattern = r'^follower_(?:latency|stage)_seconds_(sum|count)(?:\{stage="(\w+)"\})? (\S+)$'
        found: dict[str, dict[str, float]] = {}
        for kind, stage, value in re.findall(pattern, self.get("/metrics"), re.MULTILINE):
            found.setdefault(stage or "latency", {})[kind] = float(value)
        return {name: (values["sum"], int(values["count"])) for name, values in found.items()}

    def mean_ms_since(self, before: dict[str, tuple[float, int]]) -> dict[str, float]:
        """Mean milliseconds per frame of each of `server_seconds` since ``before`` (an earlier answer of it)."""
        return {
            name: 1000.0 * (total - before[name][0]) / max(count - before[name][1], 1)
            for name, (total, count) in self.server_seconds().items()
        }

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then the exit status; SIGKILL if it has not exited within ``timeout`` seconds (and the wait's
        TimeoutExpired raised)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(5)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
