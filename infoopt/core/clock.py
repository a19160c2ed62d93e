"""The one clock: timestamps are timezone-aware UTC everywhere."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, with tzinfo (every table stores aware UTC timestamps)."""
    return datetime.now(UTC)
