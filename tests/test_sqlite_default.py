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
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert "infoopt_desk_metrics_up 1.0" in metrics, "the desk's gauges are read from SQLite too"
        article = httpx.get(f"{base}/api/v1/kb/articles/cukr_card", params={"language": "uk"}, timeout=10)
        assert article.status_code == 200, "serve loaded the knowledge base into SQLite"
        assert article.json()["valid_until"] == "2027-03-04"
        checks = httpx.get(f"{base}/readyz", timeout=10).json()["checks"]
        assert checks["database"]["detail"] == "sqlite"
        assert checks["redis"]["detail"].startswith("in-process")
        assert (tmp_path / "infoopt.sqlite3").exists(), "serve applied the migrations to the SQLite file"
        _a_ticket_there_and_back(base, environment, tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert f"http://127.0.0.1:{port}/docs" in output, "serve prints the URLs"
    assert f"http://127.0.0.1:{port}/chat" in output


def _a_ticket_there_and_back(base: str, environment: dict[str, str], cwd: Path) -> None:
    """On the defaults one process does everything: the handoff, the desk, and delivering the reply."""
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "infoopt.cli",
            "users",
            "create",
            "--username",
            "tomasz",
            "--role",
            "consultant",
            "--office",
            "TARNOW",
            "--password-stdin",
        ],
        input="Tarnow-password-2026\n",
        text=True,
        capture_output=True,
        cwd=cwd,
        env=environment,
        check=False,
    )
    assert created.returncode == 0, created.stderr

    def ask(**payload: object) -> dict[str, object]:
        response = httpx.post(f"{base}/api/v1/ask", json=payload, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    start = ask(text="", action="consultant", language="uk")
    session_id = start["session_id"]
    ask(session_id=session_id, action="choose_office", value="TARNOW")
    ask(session_id=session_id, text="Як змінити роботодавця з картою побиту?")
    done = ask(session_id=session_id, action="consent", value="yes")
    number = done["ticket"]["number"]  # type: ignore[index]
    token = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": "tomasz", "password": "Tarnow-password-2026"},
        timeout=10,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    queue = httpx.get(f"{base}/api/v1/tickets", headers=headers, timeout=10).json()["items"]
    ticket = next(item for item in queue if item["number"] == number)
    assert (
        httpx.post(f"{base}/api/v1/tickets/{ticket['id']}/claim", headers=headers, timeout=10).status_code
        == 200
    )
    reply = httpx.post(
        f"{base}/api/v1/tickets/{ticket['id']}/reply",
        json={"text": "Вітаю! Відповідь від PID Tarnów."},
        headers=headers,
        timeout=10,
    )
    assert reply.status_code == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        items = httpx.get(f"{base}/api/v1/conversations/{session_id}/messages", timeout=10).json()["items"]
        if any(item["author"] == "consultant" for item in items):
            break
        time.sleep(0.3)
    assert [item["text"] for item in items if item["author"] == "consultant"] == [
        "Вітаю! Відповідь від PID Tarnów."
    ]
