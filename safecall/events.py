"""Structured logging: one JSON line per event. Callers pass phone numbers masked."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields) -> None:
    if logger.isEnabledFor(level):  # the dialer logs every call: build the line only when it is kept
        logger.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False, default=_plain))


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


class JsonLineFormatter(logging.Formatter):
    """Wraps plain messages as JSON too, so every line of the daemon's log parses."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        try:
            payload = json.loads(message)
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            payload = {"event": "log", "message": message}
        payload = {"ts": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds"),
                   "level": record.levelname.lower(), "logger": record.name, **payload}
        return json.dumps(payload, ensure_ascii=False)
