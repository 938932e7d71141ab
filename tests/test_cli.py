"""`jobsite up` runs the whole site from nothing, and stops every child cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from jobsite.redis_server import EmbeddedRedis

from .conftest import free_port


def test_up_serves_health_within_10_seconds_and_stops_cleanly() -> None:
    data = Path(tempfile.mkdtemp(prefix="jsu"))
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(JOBSITE_DATA_DIR=str(data), JOBSITE_SANDBOX_PORT=str(sandbox_port))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "jobsite", "up", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "jobsite is up" in line:
                announced.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert announced.wait(10), "jobsite up did not announce itself within 10 s:\n" + "".join(lines)
        site = f"http://127.0.0.1:{port}"
        assert requests.get(f"{site}/healthz", timeout=2).status_code == 200
        ready = requests.get(f"{site}/readyz", timeout=2)
        assert ready.status_code == 200 and ready.json()["redis"] == "ok"
        assert time.monotonic() - started < 10
        assert requests.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/", timeout=2).ok
        assert EmbeddedRedis(data).pid is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        reader.join(5)
        proc.stdout.close()
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out and f"http://127.0.0.1:{sandbox_port}/_sandbox/" in out
    assert not EmbeddedRedis(data).ping()
    for port_ in (port, sandbox_port):
        try:
            requests.get(f"http://127.0.0.1:{port_}/", timeout=1)
            raise AssertionError(f"port {port_} still served after SIGTERM")
        except requests.ConnectionError:
            pass
