"""Loops that run for the life of a process (the outbox worker, housekeeping, broadcasts)."""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """Raise `CancelledError` if this task was asked to stop but a library swallowed the cancellation while
    it waited (redis-py's read timeout does; so can Python 3.11's `wait_for`). A loop calls this each
    round, so that SIGTERM still ends the process."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
