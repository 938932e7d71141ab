"""Logging: one line per event, with the request id when there is one, and no personal data."""

from __future__ import annotations

import logging
import sys


class OneLineFormatter(logging.Formatter):
    """Escapes line breaks and other control characters in the message, so text from outside (Lever's error
    messages, a file name) can never forge a log line; a traceback keeps its lines, after the message."""

    _CONTROL = str.maketrans({c: f"\\x{c:02x}" for c in [*range(32), 127] if c != 9} | {10: "\\n", 13: "\\r"})

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(self._CONTROL)
        return super().formatMessage(record)


class RequestIdFilter(logging.Filter):
    """Adds the request id (set by the web's SecurityHeaders middleware) to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = "-"
        if "flask" in sys.modules:  # a worker never loads Flask: no request there
            from flask import has_request_context, request

            if has_request_context():
                record.request_id = request.environ.get("jobsite.request_id", "-")
        return True


def configure(level: str = "INFO") -> None:
    """One-line records with the request id on stderr. The level comes from Settings.log_level (JOBSITE_LOG_LEVEL,
    validated there), which the CLI applies once the settings are read."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
