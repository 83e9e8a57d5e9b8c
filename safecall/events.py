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
    """Wraps plain messages as JSON too, so every line of the daemon's log parses: one line a record, its message
    whole (newlines escaped in the JSON string), a traceback in the line's `traceback` field."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args  # uvicorn's access-log fields
            payload = {
                "event": "http_request",
                "client": client,
                "method": method,
                "path": path,
                "http": version,
                "status": status,
            }
        else:
            message = record.getMessage()
            try:
                payload = json.loads(message)
                if not isinstance(payload, dict):
                    raise ValueError
            except ValueError:
                payload = {"event": "log", "message": message}
        payload = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            **payload,
        }
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=_plain)


def json_line(level: str, logger: str, event: str, **fields) -> str:
    """One log line as the formatter writes it, for what is printed outside logging (a command's fatal error)."""
    return json.dumps(
        {
            "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
            "level": level,
            "logger": logger,
            "event": event,
            **fields,
        },
        ensure_ascii=False,
        default=_plain,
    )


def uvicorn_log_config(loggers: tuple[str, ...] = ("uvicorn", "uvicorn.error", "uvicorn.access")) -> dict:
    """uvicorn's logging (its error and access logs) as JSON lines on stderr, as the other services write; `safecall
    web` adds the "safecall" logger, which nothing else configures in that process."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "safecall.events.JsonLineFormatter"}},
        "handlers": {"json": handler},
        "loggers": {name: {"handlers": ["json"], "level": "INFO", "propagate": False} for name in loggers},
    }
