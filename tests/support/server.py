"""Run the engine as a real process (`python -m app`) on 127.0.0.1 and wait until it is ready."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EngineProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env.get("PORT") or free_port())
        self.env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port), "HF_HUB_OFFLINE": "1", **env}
        self.env["PORT"] = str(self.port)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout: float = 120) -> EngineProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=REPO / "fastapi_service", env=self.env, stdout=log, stderr=log
        )
        if wait_ready:
            self.wait("/readyz", timeout)
        return self

    def wait(self, path: str, timeout: float) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"engine exited with {self.proc.returncode}; log: {self.tail()}")
            try:
                r = httpx.get(self.url + path, timeout=2)
                if r.status_code == 200:
                    return r
                last = r.text
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.25)
        raise TimeoutError(f"{path} not ready after {timeout}s: {last}; log: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
