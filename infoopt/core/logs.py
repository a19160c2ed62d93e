"""Structured logs: one JSON object per line, with whatever `extra=` the call site passed — with phone
numbers, e-mail addresses and case numbers masked, whoever logged them (a library included)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came from `extra=` and belongs in the JSON.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


# A case number (WSC-II-S.6151.1234.2026), an e-mail address, and a run of 9 to 15 digits that is not
# part of a word or a dashed code (a phone number, a Telegram chat id; not a ticket number or a date).
_CASE_NUMBER = re.compile(
    r"\b[A-Z]{2,4}[-\s]+[IVX]{1,4}[-\s]+[A-Z][.\s]*\d{4}[.\s]*\d{1,6}[.\s]*\d{4}\b", re.I
)
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_PHONE = re.compile(r"(?<![\w.-])\+?\d(?:[\s-]?\d){8,14}(?![\w-])")


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"{match.group(0)[:3]}…{digits[-3:]}"


def mask_personal(text: str) -> str:
    """The text with case numbers, e-mail addresses and phone numbers masked."""
    text = _CASE_NUMBER.sub("[case number]", text)
    text = _EMAIL.sub(lambda match: f"…@{match.group(1)}", text)
    return _PHONE.sub(_mask_phone, text)


class MaskPersonalData(logging.Filter):
    """Mask personal data in a record's message and its extra string fields before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_personal(message)
        if masked != message:
            record.msg, record.args = masked, ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask_personal(value))
        return True


class JsonFormatter(logging.Formatter):
    """Render a record as a single JSON line: time, level, logger, event and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", *, as_json: bool = True) -> None:
    """Send the service's and uvicorn's logs to stderr in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskPersonalData())
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def uvicorn_log_config(level: str = "INFO", *, as_json: bool = True) -> dict[str, Any]:
    """A dictConfig for uvicorn's own workers, so every worker logs the same way."""
    formatter = (
        {"()": "infoopt.core.logs.JsonFormatter"}
        if as_json
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"personal": {"()": "infoopt.core.logs.MaskPersonalData"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["personal"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"level": level.upper()},
            "uvicorn.access": {"level": level.upper()},
        },
    }
