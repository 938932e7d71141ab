"""Pages for candidates: job list, posting, application form, confirmation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

bp = Blueprint("candidates", __name__)


@bp.get("/")
def jobs() -> Any:
    return "jobs"
