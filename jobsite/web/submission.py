"""Receiving an application from the web, shared by the HTML form and the JSON API: look up the posting's form,
validate the answers, limit abuse, hand the application to intake."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request
from flask_babel import gettext
from werkzeug.datastructures import FileStorage, MultiDict

from .. import intake
from ..forms import Form, UploadedFile, build_form, validate
from ..posting import Posting
from ..services import get_services


class Rejected(Exception):
    """A submission refused as a whole (not field by field): `status` and a message for the candidate."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def form_for(posting_id: str) -> tuple[Posting, Form]:
    """The posting and its form (PostingNotFound for an unknown or closed posting)."""
    catalog = get_services().catalog
    posting = catalog.posting(posting_id)
    return posting, build_form(catalog.questions(posting).data)


def answers_from(form_data: MultiDict[str, str], form: Form) -> dict[str, Any]:
    """Form fields as answers: lists for multiple-select fields, strings otherwise."""
    answers: dict[str, Any] = {}
    for f in form.fields():
        if f.type == "multiple-select":
            answers[f.name] = form_data.getlist(f.name)
        elif f.name in form_data:
            answers[f.name] = form_data.get(f.name)
    if "consent[store]" in form_data:
        answers["consent[store]"] = form_data.get("consent[store]")
    return answers


def uploads_from(files: MultiDict[str, FileStorage], form: Form, max_bytes: int) -> dict[str, UploadedFile]:
    """Uploaded files of the form's file fields, read at most one byte past the limit."""
    out = {}
    for f in form.fields():
        storage = files.get(f.name) if f.type == "file-upload" else None
        if storage is not None and storage.filename:
            out[f.name] = UploadedFile(storage.filename, storage.stream.read(max_bytes + 1))
    for storage in files.values():
        storage.close()  # large uploads are spooled to temporary files
    return out


def receive(posting: Posting, form: Form, answers: Mapping[str, Any],
            uploads: Mapping[str, UploadedFile], *, idempotency_key: str | None, honeypot: str = "") -> intake.Receipt:
    """Validate and hand over to intake. Raises ValidationFailed (field errors) or Rejected."""
    svc = get_services()
    earlier = intake.previous(svc, idempotency_key)
    if earlier:
        return earlier
    if honeypot:
        raise Rejected(400, gettext("This submission looked automated, so it was not sent. If you are a person, "
                                    "please reload the page and try again."))
    application = validate(form, answers, uploads, svc.settings.max_file_mb * 2**20)
    try:
        intake.check_ip(svc, request.remote_addr or "unknown")
    except intake.TooManySubmissions:
        raise Rejected(429, gettext("We received many applications from your network in the last hour. Please try "
                                    "again later."), {"Retry-After": "3600"}) from None
    return intake.submit(svc, application, uploads, posting_title=posting["text"], idempotency_key=idempotency_key)
