"""`infoopt serve` for a benchmark: one worker on the zero-setup defaults in a temporary data directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    *, environment_extra: dict[str, str] | None = None, workers: int = 1, **settings: str
) -> Iterator[str]:
    """Start the service with these INFOOPT_ settings (beside the benchmark defaults), any other variables
    (TWILIO_..., TELEGRAM_...) and this many worker processes; yield its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("INFOOPT_", "TELEGRAM_", "TWILIO_"))
        }
        environment.update(
            {
                "INFOOPT_DATA_DIR": data,
                "INFOOPT_DATABASE_URL": f"sqlite:///{data}/bench.sqlite3",
                "INFOOPT_LOG_LEVEL": "WARNING",
                # One client address asks everything: the per-address limit is for real crowds, not this.
                "INFOOPT_ASK_LIMIT_PER_ADDRESS_PER_MINUTE": "1000000",
            }
        )
        environment.update({f"INFOOPT_{name.upper()}": value for name, value in settings.items()})
        environment.update(environment_extra or {})
        server = subprocess.Popen(
            [sys.executable, "-m", "infoopt.cli", "serve", "--port", str(port), "--workers", str(workers)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not become ready")
                time.sleep(0.5)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)
