"""A real `skippy serve` process on a free port, as users run it: for the tests of the API server and the
dashboard."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mlops.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`skippy serve` in its own process, on a free port."""

    def __init__(self, settings: Settings, key: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL")}
        environment |= {
            "SKIPPY_HOME": str(settings.home),
            "SKIPPY_LOG_JSON": "true",
            "SKIPPY_DRIFT_REPORT": "false",
            "SKIPPY_GATE_REQUIRE_EDGE": "false",  # as make_settings: these tests are about jobs, not the gate
        }
        if settings.database_url:
            environment["DATABASE_URL"] = settings.database_url
        self.log = open(settings.home / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlops.cli", "serve", "--port", str(self.port)],
            env=environment | env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.client.get("/api/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
            assert self.process.poll() is None, self.output()
        raise AssertionError("server did not come up:\n" + self.output())

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.client.close()
        self.log.close()
        return code

    def job(self, job_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/mlops/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_for(self, job_id: int, done: Callable[[dict[str, Any]], bool], timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if done(job):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} never got there: {self.job(job_id)}\n{self.output()}")


