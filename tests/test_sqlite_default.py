"""The zero-setup default: `infoopt serve` on SQLite and in-process Redis, as a newcomer runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_infoopt_serve_runs_on_the_embedded_defaults(tmp_path: Path) -> None:
    port = _free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INFOOPT_", "TELEGRAM_", "TWILIO_"))
    }
    # Only the data directory moves into the temporary folder; everything else is the default.
    environment["INFOOPT_DATA_DIR"] = str(tmp_path)
    environment["INFOOPT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'infoopt.sqlite3'}"
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "infoopt.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        for path in ("/healthz", "/readyz", "/openapi.json", "/metrics", "/docs"):
            response = httpx.get(f"{base}{path}", timeout=10)
            assert response.status_code == 200, (path, response.text)
        article = httpx.get(f"{base}/api/v1/kb/articles/cukr_card", params={"language": "uk"}, timeout=10)
        assert article.status_code == 200, "serve loaded the knowledge base into SQLite"
        assert article.json()["valid_until"] == "2027-03-04"
        checks = httpx.get(f"{base}/readyz", timeout=10).json()["checks"]
        assert checks["database"]["detail"] == "sqlite"
        assert checks["redis"]["detail"].startswith("in-process")
        assert (tmp_path / "infoopt.sqlite3").exists(), "serve applied the migrations to the SQLite file"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert f"http://127.0.0.1:{port}/docs" in output, "serve prints the URLs"
    assert f"http://127.0.0.1:{port}/chat" in output
