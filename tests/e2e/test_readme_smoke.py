"""The README's promise: `dsr-gateway serve` with no configuration answers `{ purposes { key } }`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"
START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "dsr-gateway serve exited before it was healthy"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"dsr-gateway serve was not healthy within {START_SECONDS} s")


def test_serve_with_no_settings_answers_purposes(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
    environment["PYTHONPATH"] = str(SRC)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dsr_gateway", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}/healthz")
        response = httpx.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": "{ purposes { key } }"}, timeout=10
        )
        assert response.status_code == 200
        assert response.json() == {"data": {"purposes": []}}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    log = output.decode(errors="replace")
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
    assert process.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete." in log
    assert "Traceback" not in log
    assert (tmp_path / "dsr_gateway.db").is_file()
    assert (tmp_path / ".dsr_gateway_dev_secrets.json").is_file()
    assert (tmp_path / ".dsr_gateway_dev_secrets.json").stat().st_mode & 0o777 == 0o600
