"""Logging: one line per event, with the request id when there is one, and no personal data."""

from __future__ import annotations

import logging
import os

from flask import has_request_context, request


class RequestIdFilter(logging.Filter):
    """Adds the request id (set by the web's SecurityHeaders middleware) to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request.environ.get("jobsite.request_id", "-") if has_request_context() else "-"
        return True


def configure(level: str | None = None) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("JOBSITE_LOG_LEVEL", "INFO"))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
