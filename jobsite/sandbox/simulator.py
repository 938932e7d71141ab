"""The Lever sandbox: an HTTP simulator of the Lever Data API v1 endpoints jobsite uses.

It answers the same paths, basic auth, `data` envelopes, pagination tokens and `{code, message}` errors as Lever, and
has switches under `/_sandbox/` for what a careers site must survive: maintenance mode (503 on everything but the three
postings reads), rate limits (token buckets with or without Retry-After, or strict sliding windows), latency, injected
failures, and connections dropped after a request was processed. Everything it received can be read back.

Applications become opportunities of contacts (one contact per canonical email, several opportunities each), with
stages, archive reasons ("Hired" among them) and tags. Control endpoints move an opportunity to a stage, archive it
or delete a contact, as a recruiter would in Lever, and send Lever's signed webhooks for it to a configured URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import requests
from flask import Flask, Response, abort, jsonify, redirect, request
from markupsafe import escape

from ..intake import fieldtypes
from .seed import make_postings, make_questions, make_users, new_posting

API_KEY = "sandbox-key"
MAINTENANCE_EXEMPT = {"postings.list", "postings.get", "postings.questions"}
UPLOAD_TTL_MS = 24 * 3600 * 1000
# Lever's stages: New lead and New applicant first, Offer last (in every account); the rest are per company.
STAGES = [
    {"id": "lead-new", "text": "New lead"},
    {"id": "applicant-new", "text": "New applicant"},
    {"id": "6a0f3c7e-1c52-4e4b-9f0e-2d1f8f3a5b10", "text": "Phone screen"},
    {"id": "0d3b6e57-8f34-4c1e-a6a2-7f5e9b1c2d44", "text": "On-site interview"},
    {"id": "offer", "text": "Offer"},
]
# Lever's archive reasons: "Hired" exists in every account; any other reason means not hired.
ARCHIVE_REASONS = [
    {"id": "63dd55b2-a99f-4e7b-985f-22c7bf80ab42", "text": "Hired", "status": "active", "type": "hired"},
    {"id": "8e0a8a4a-5f2b-4d5c-9c31-0b1f6f6f0a01", "text": "Underqualified", "status": "active", "type": "non-hired"},
    {"id": "b7f0c9a2-3d4e-4f5a-8b6c-7d8e9f0a1b2c", "text": "Withdrew", "status": "active", "type": "non-hired"},
]
WEBHOOK_TIMEOUT_S = 5.0


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> float:
        """0 if a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class SlidingWindow:
    """At most `limit` requests in any `window_s` seconds, as they arrive: the strictest reading of "N per second".
    Only requests let through count; a refused one is not counted."""

    def __init__(self, limit: float, window_s: float = 1.0):
        self.limit, self.window_s = limit, window_s
        self.arrivals: deque[float] = deque()

    def wait(self, now: float) -> float:
        """0 if one more request at `now` fits, else the seconds until it would."""
        while self.arrivals and self.arrivals[0] <= now - self.window_s:
            self.arrivals.popleft()
        return 0.0 if len(self.arrivals) + 1 <= self.limit else self.arrivals[0] + self.window_s - now

    def count(self, now: float) -> None:
        self.arrivals.append(now)


@dataclass
class Switches:
    maintenance: bool = False
    mode: str = "bucket"  # "bucket": token buckets as Lever documents them; "window": strict sliding windows
    window_s: float = 1.0  # the window of "window" mode
    apply_per_s: float = 2.0
    apply_burst: float = 2.0
    per_s: float = 10.0
    burst: float = 20.0
    retry_after: bool = True
    latency_s: float = 0.0
    latency_path: str = ""
    latency_by_endpoint: dict[str, float] = field(default_factory=dict)  # e.g. {"opportunities.notes": 5.0}
    drop: list[dict[str, Any]] = field(default_factory=list)  # [{"path": substr, "endpoint", "count": n, "tag"}]
    # [{"path", "endpoint", "count", "status", "message", "after", "retry_after", "tag"}]
    fail: list[dict[str, Any]] = field(default_factory=list)
    forbid: set[str] = field(default_factory=set)  # endpoint prefixes the key may not use, e.g. "opportunities"
    webhook_url: str = ""  # where Lever's webhooks are sent; empty: none are sent
    webhook_token: str = ""  # the signing token (Lever's signatureToken)
    webhook_bad_signature: bool = False  # sign with the wrong token, as an impostor would


class SandboxState:
    """Everything the sandbox holds; one lock guards it (the server is threaded)."""

    def __init__(self, seed: int = 7):
        self.lock = threading.RLock()
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.postings = {p["id"]: p for p in make_postings(self.seed)}
            self.published = 0  # postings published since the start ("publish a new posting")
            self.questions = {pid: make_questions(p, i) for i, (pid, p) in enumerate(self.postings.items())}
            self.uploads: dict[str, dict[str, Any]] = {}
            self.contacts: dict[str, str] = {}
            self.opportunities: list[dict[str, Any]] = []
            self.applications: list[dict[str, Any]] = []
            self.requests: list[dict[str, Any]] = []  # every request answered, as it arrived
            self.processing: list[str] = []  # the endpoints of requests let through and not answered yet
            self.webhooks: list[dict[str, Any]] = []  # every webhook sent: {"envelope", "status"}
            self.users = make_users()
            self.notes: list[dict[str, Any]] = []  # every note: {"id", "opportunity", "user", "value", ...}
            self.switches = Switches()
            self.reset_buckets()

    def reset_buckets(self) -> None:
        s = self.switches
        self.apply_bucket = TokenBucket(s.apply_per_s, s.apply_burst)
        self.bucket = TokenBucket(s.per_s, s.burst)
        self.apply_window = SlidingWindow(s.apply_per_s, s.window_s)
        self.window = SlidingWindow(s.per_s, s.window_s)

    def take(self, endpoint: str, now: float) -> float:
        """Count a request that arrived at `now` against the limits: 0 if it may pass, else the seconds until it
        could (a refused request counts against nothing)."""
        if self.switches.mode == "window":
            windows = [self.window, self.apply_window] if endpoint == "postings.apply" else [self.window]
            wait = max(w.wait(now) for w in windows)
            if not wait:
                for w in windows:
                    w.count(now)
            return wait
        wait = self.bucket.take()
        if not wait and endpoint == "postings.apply":
            wait = self.apply_bucket.take()
        return wait


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    resp = jsonify({"code": code, "message": message})
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


def _injected(rule: dict[str, Any]) -> Response:
    """The answer of an injected failure; a 429 names its Retry-After when the rule gives one."""
    status = int(rule.get("status", 500))
    code = {429: "TooManyRequestsError", 503: "ServiceUnavailableError"}.get(status, "InjectedError")
    headers = {"Retry-After": str(rule["retry_after"])} if rule.get("retry_after") else {}
    return _error(status, rule.get("code", code), rule.get("message", "Injected failure"), headers)


def _page(items: list[Any], prefix: str) -> dict[str, Any]:
    """Lever-style pagination: `limit` 1-100, an opaque, already percent-encoded `next` token."""
    try:
        limit = min(100, max(1, int(request.args.get("limit", 100))))
    except ValueError:
        abort(_error(400, "BadRequestError", "limit must be a number from 1 to 100"))
    start = 0
    if "offset" in request.args:
        m = re.fullmatch(r"%5B(\d+)%2C%22(\w+)%22%5D", request.args["offset"])
        if not m or m.group(2) != prefix:
            abort(_error(400, "BadRequestError", "Invalid offset token"))
        start = int(m.group(1))
    chunk = items[start : start + limit]
    out: dict[str, Any] = {"data": chunk, "hasNext": start + limit < len(items)}
    if out["hasNext"]:
        out["next"] = quote(json.dumps([start + limit, prefix], separators=(",", ":")), safe="")
    return out


def _endpoint(path: str, method: str) -> str:
    parts = path.strip("/").split("/")[1:]  # drop "v1"
    if parts[:1] == ["postings"]:
        if len(parts) == 1:
            return "postings.list"
        if len(parts) == 3 and parts[2] == "apply":
            return "postings.apply" if method == "POST" else "postings.questions"
        return "postings.get"
    if parts[:1] == ["uploads"]:
        return "uploads.create"
    if parts[:1] == ["opportunities"]:
        if len(parts) == 3 and parts[2] in ("addTags", "removeTags"):
            return "opportunities.tags"
        if len(parts) == 3 and parts[2] == "notes":
            return "opportunities.notes"
        if len(parts) == 1 and method == "POST":
            return "opportunities.create"
        return "opportunities.list" if len(parts) == 1 else "opportunities.get"
    if parts == ["users"]:
        return "users.list"
    if parts == ["stages"]:
        return "stages.list"
    if parts == ["archive_reasons"]:
        return "archive_reasons.list"
    return "unknown"


def _take(rules: list[dict[str, Any]], path: str, endpoint: str = "", after: bool = False) -> dict[str, Any] | None:
    """Consume one use of the first rule whose path (and endpoint, if it names one) matches; `after` picks the
    failures answered after processing rather than before."""
    for rule in rules:
        if (
            rule.get("path", "") in path
            and rule.get("endpoint", endpoint) == endpoint
            and bool(rule.get("after")) == after
            and rule.get("count", 1) > 0
        ):
            rule["count"] = rule.get("count", 1) - 1
            if rule["count"] <= 0:
                rules.remove(rule)
            return rule
    return None


def create_sandbox_app(state: SandboxState | None = None) -> Flask:
    """The sandbox as a WSGI app; `app.extensions["sandbox"]` is its state."""
    app = Flask(__name__)
    st = state or SandboxState()
    app.extensions["sandbox"] = st

    @app.before_request
    def gatekeeper() -> Response | None:
        if not request.path.startswith("/v1/"):
            return None
        request.environ["sandbox.arrived"] = time.time()  # when the request reached Lever, as limits see it
        endpoint = _endpoint(request.path, request.method)
        request.environ["sandbox.endpoint"] = endpoint
        auth = request.headers.get("Authorization", "")
        key = ""
        if auth.startswith("Basic "):
            try:
                key = base64.b64decode(auth[6:]).decode().partition(":")[0]
            except ValueError:
                key = ""
        if key != API_KEY:
            return _error(401, "UnauthorizedError", "Invalid API key")
        with st.lock:
            sw = st.switches
            if any(endpoint.startswith(f) for f in sw.forbid):
                return _error(403, "ForbiddenError", "This API key does not have access to this endpoint")
            if sw.maintenance and endpoint not in MAINTENANCE_EXEMPT:
                return _error(503, "ServiceUnavailableError", "Lever is undergoing maintenance. Retry later.")
            rule = _take(sw.fail, request.path, endpoint)
            if rule:
                return _injected(rule)
            wait = st.take(endpoint, request.environ["sandbox.arrived"])
            if wait:
                # Window mode stands for a Lever that documents numbers, not an algorithm: no Retry-After.
                retry_after = sw.retry_after and sw.mode == "bucket"
                headers = {"Retry-After": str(max(1, round(wait)))} if retry_after else {}
                return _error(429, "TooManyRequestsError", "Rate limit exceeded", headers)
            latency = max(
                sw.latency_s if sw.latency_path in request.path else 0.0, sw.latency_by_endpoint.get(endpoint, 0.0)
            )
            st.processing.append(endpoint)
            request.environ["sandbox.processing"] = True
        if latency:
            time.sleep(latency)
        return None

    @app.after_request
    def record(response: Response) -> Response:
        endpoint = request.environ.get("sandbox.endpoint")
        if endpoint:
            with st.lock:
                if request.environ.get("sandbox.processing") and endpoint in st.processing:  # (not if reset since)
                    st.processing.remove(endpoint)
                st.requests.append(
                    {
                        "t": request.environ["sandbox.arrived"],
                        "method": request.method,
                        "path": request.path,
                        "endpoint": endpoint,
                        "status": response.status_code,
                    }
                )
                processed = request.environ.get("sandbox.processing") and response.status_code < 400
                late = _take(st.switches.fail, request.path, endpoint, after=True) if processed else None
                if late:  # processed, then answered with an error: the client cannot tell it from an unprocessed one
                    response = _injected(late)
                    st.requests[-1]["status"] = response.status_code
                drop = _take(st.switches.drop, request.path, endpoint)
            if drop:
                # The request was processed; now the client loses the answer, as with a dropped connection.
                sock = request.environ.get("werkzeug.socket")
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
        return response

    # Postings

    @app.get("/v1/postings")
    def list_postings() -> Any:
        args = request.args
        with st.lock:
            items = list(st.postings.values())
        states = args.getlist("state")
        channels = args.getlist("distributionChannel")
        if states:
            items = [p for p in items if p["state"] in states]
            if "published" in states and not channels:
                channels = ["public"]  # Lever: state=published means the public job site unless both are named
        if channels:
            items = [p for p in items if set(channels) & set(p["distributionChannels"] or [])]
        for name in ("team", "department", "location", "commitment", "level"):
            wanted = args.getlist(name)
            if wanted:
                key = "allLocations" if name == "location" else name
                items = [p for p in items if set(wanted) & set(_as_list(p["categories"].get(key)))]
        items.sort(key=lambda p: p["createdAt"], reverse=True)
        if "content" not in args.getlist("include") and args.getlist("include"):
            items = [{k: v for k, v in p.items() if k != "content"} for p in items]
        return _page(items, "postings")

    @app.get("/v1/postings/<posting_id>")
    def get_posting(posting_id: str) -> Any:
        with st.lock:
            posting = st.postings.get(posting_id)
        if posting is None:
            return _error(404, "ResourceNotFound", "That posting doesn't exist")
        return {"data": posting}

    @app.get("/v1/postings/<posting_id>/apply")
    def get_questions(posting_id: str) -> Any:
        with st.lock:
            form = st.questions.get(posting_id) if posting_id in st.postings else None
        if form is None:
            return _error(404, "ResourceNotFound", "That posting doesn't exist")
        return {"data": form}

    @app.post("/v1/uploads")
    def upload() -> Any:
        f = request.files.get("file")
        if f is None:
            return _error(400, "BadRequestError", "Missing file")
        content = f.read()
        if len(content) > 30 * 1024 * 1024:
            return _error(413, "RequestEntityTooLarge", "File exceeds 30 MB")
        file_id = f"{uuid.uuid4()}-{f.filename}"
        expires = int(time.time() * 1000) + UPLOAD_TTL_MS
        with st.lock:
            st.uploads[file_id] = {
                "filename": f.filename,
                "size": len(content),
                "expiresAt": expires,
                "sha256": hashlib.sha256(content).hexdigest(),
            }  # for tests: the bytes arrived
        uri = f"{request.host_url}v1/uploads/{quote(file_id)}"
        return {
            "data": {"id": file_id, "filename": f.filename, "uri": uri, "size": len(content), "expiresAt": expires}
        }, 200

    @app.post("/v1/postings/<posting_id>/apply")
    def apply(posting_id: str) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "BadRequestError", "Body must be a JSON object")
        with st.lock:
            posting = st.postings.get(posting_id)
            if posting is None:
                return _error(404, "ResourceNotFound", "That posting doesn't exist")
            if posting["state"] not in ("published", "internal"):
                return _error(400, "BadRequestError", "This posting is not accepting applications")
            problem = _check_application(st, st.questions[posting_id], body)
            if problem:
                return _error(400, "BadRequestError", problem)
            # Lever emails the candidate its own confirmation only when asked (query, default false): recorded so
            # a test can see what jobsite asked for.
            confirm = request.args.get("send_confirmation_email", "false").lower() == "true"
            app_id = _record_application(st, posting, body, confirm)
            opp = st.opportunities[-1]
            event = _event(
                "applicationCreated",
                {
                    "applicationId": app_id,
                    "opportunityId": opp["id"],
                    "candidateId": opp["id"],
                    "contactId": opp["contact"],
                    "postingId": posting["id"],
                },
            )
        # Lever sends its webhooks apart from the answer to the request that caused them.
        threading.Thread(target=_send_webhooks, args=(st, [event]), daemon=True).start()
        return {"data": {"applicationId": app_id}}, 201

    # Opportunities

    @app.get("/v1/opportunities")
    def list_opportunities() -> Any:
        args = request.args
        with st.lock:
            items = list(st.opportunities)
        emails = [e.strip().lower() for e in args.getlist("email")]
        if emails:
            items = [o for o in items if set(emails) & set(o["emails"])]
        for param, key in (("posting_id", "_posting"), ("contact_id", "contact"), ("stage_id", "stage")):
            wanted = args.getlist(param)
            if wanted:
                items = [o for o in items if o[key] in wanted]
        tags = args.getlist("tag")  # case-sensitive, ORed
        if tags:
            items = [o for o in items if set(tags) & set(o["tags"])]
        if args.get("archived") in ("true", "false"):
            items = [o for o in items if (o["archived"] is not None) == (args["archived"] == "true")]
        for param, field_, start in (
            ("created_at_start", "createdAt", True),
            ("created_at_end", "createdAt", False),
            ("updated_at_start", "updatedAt", True),
            ("updated_at_end", "updatedAt", False),
            ("advanced_at_start", "lastAdvancedAt", True),
            ("advanced_at_end", "lastAdvancedAt", False),
        ):
            if param in args:
                try:
                    limit = int(args[param])
                except ValueError:
                    return _error(400, "BadRequestError", f"{param} must be a timestamp in ms")
                items = [o for o in items if (o[field_] >= limit if start else o[field_] <= limit)]
        expand = args.getlist("expand")
        out = [_public_opportunity(st, o, expand) for o in items]
        return _page(out, "opportunities")

    @app.get("/v1/opportunities/<opportunity_id>")
    def get_opportunity(opportunity_id: str) -> Any:
        with st.lock:
            found = [o for o in st.opportunities if o["id"] == opportunity_id]
        if not found:
            return _error(404, "ResourceNotFound", "That opportunity doesn't exist")
        return {"data": _public_opportunity(st, found[0], request.args.getlist("expand"))}

    @app.post("/v1/opportunities/<opportunity_id>/<action>")
    def change_tags(opportunity_id: str, action: str) -> Any:
        """Update opportunity tags: `addTags` / `removeTags` with `{"tags": [...]}` (any printable text)."""
        if action not in ("addTags", "removeTags"):
            return _error(404, "ResourceNotFound", "Unknown route")
        body = request.get_json(silent=True)
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list) or not all(isinstance(t, str) and t and t.isprintable() for t in tags):
            return _error(400, "BadRequestError", "tags must be a list of printable strings")
        with st.lock:
            opp = next((o for o in st.opportunities if o["id"] == opportunity_id), None)
            if opp is None:
                return _error(404, "ResourceNotFound", "That opportunity doesn't exist")
            if action == "addTags":
                opp["tags"] += [t for t in dict.fromkeys(tags) if t not in opp["tags"]]
            else:
                opp["tags"] = [t for t in opp["tags"] if t not in tags]
            opp["updatedAt"] = _now_ms()
            return {"data": _public_opportunity(st, opp, [])}

    # Stages and archive reasons

    @app.get("/v1/stages")
    def list_stages() -> Any:
        return _page(STAGES, "stages")

    @app.get("/v1/archive_reasons")
    def list_archive_reasons() -> Any:
        kind = request.args.get("type")
        return _page([a for a in ARCHIVE_REASONS if kind in (None, a["type"])], "archive_reasons")

    _sourcing_routes(app, st)
    _control_routes(app, st)
    return app


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _check_application(st: SandboxState, form: dict[str, Any], body: dict[str, Any]) -> str | None:
    """Lever's checks on an application body: required answers present, custom answers by position, uploads known."""
    personal = {p.get("name"): p.get("value") for p in body.get("personalInformation") or [] if isinstance(p, dict)}
    for q in form["personalInformation"]:
        if q.get("required") and not personal.get(q["name"]):
            return f"Missing required field: {q['text']}"
    if "@" not in str(personal.get("email", "")):
        return "Please enter a valid email address"
    answers = {c.get("id"): c.get("fields") or [] for c in body.get("customQuestions") or [] if isinstance(c, dict)}
    for qset in form["customQuestions"]:
        fields = answers.get(qset["id"], [])
        for i, f in enumerate(qset["fields"]):
            value = fields[i].get("value") if i < len(fields) and isinstance(fields[i], dict) else None
            if f["required"] and value in (None, "", []):
                return f"Missing required field: {f['text']}"
            if (
                fieldtypes.of(f["type"]).choice == fieldtypes.Choice.ONE
                and value not in (None, "")
                and value not in [o["text"] for o in f["options"]]
            ):
                return f"Invalid option for {f['text']}"
    uris = [personal.get("resume")] + [
        f.get("value")
        for c in body.get("customQuestions") or []
        for f in c.get("fields") or []
        if isinstance(f, dict) and isinstance(f.get("value"), str) and "/v1/uploads/" in f["value"]
    ]
    now = time.time() * 1000
    for uri in filter(None, uris):
        file_id = str(uri).rsplit("/v1/uploads/", 1)[-1]
        upload = st.uploads.get(unquote(file_id))
        if upload is None or upload["expiresAt"] < now:
            return "File upload not found or expired; upload it again"
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event": name, "data": data}


def _send_webhooks(st: SandboxState, events: list[dict[str, Any]]) -> list[int]:
    """POST each event as Lever does: `{id, event, triggeredAt, token, signature, data}`, signed with
    hex(HMAC-SHA256(signatureToken, token + triggeredAt)); returns the statuses (0: no answer)."""
    with st.lock:
        sw = st.switches
        url, key, bad = sw.webhook_url, sw.webhook_token, sw.webhook_bad_signature
    statuses: list[int] = []
    if not url:
        return statuses
    for event in events:
        triggered = _now_ms()
        token = secrets.token_hex(24)
        signing = ("not-" + key) if bad else key
        signature = hmac.new(signing.encode(), f"{token}{triggered}".encode(), hashlib.sha256).hexdigest()
        envelope = {
            "id": str(uuid.uuid4()),
            "event": event["event"],
            "triggeredAt": triggered,
            "token": token,
            "signature": signature,
            "data": event["data"],
        }
        try:
            status = requests.post(
                url, json=envelope, timeout=WEBHOOK_TIMEOUT_S, headers={"User-Agent": "Lever-Webhooks"}
            ).status_code
        except requests.RequestException:
            status = 0
        with st.lock:
            st.webhooks.append({"envelope": envelope, "status": status})
        statuses.append(status)
    return statuses


def _record_application(
    st: SandboxState, posting: dict[str, Any], body: dict[str, Any], send_confirmation_email: bool
) -> str:
    personal = {p.get("name"): p.get("value") for p in body["personalInformation"]}
    email = str(personal["email"]).strip().lower()
    contact = st.contacts.setdefault(email, str(uuid.uuid4()))
    now = int(time.time() * 1000)
    app_id, opp_id = str(uuid.uuid4()), str(uuid.uuid4())
    st.applications.append(
        {
            "id": app_id,
            "opportunityId": opp_id,
            "posting": posting["id"],
            "receivedAt": now,
            "arrived": request.environ["sandbox.arrived"],
            "body": body,
            "sendConfirmationEmail": send_confirmation_email,
        }
    )
    st.opportunities.append(
        {
            "id": opp_id,
            "name": personal.get("fullName"),
            "contact": contact,
            "emails": [email],
            "headline": personal.get("currentCompany") or "",
            "phones": [],
            "confidentiality": "non-confidential",
            "location": personal.get("currentLocation") or "",
            "links": [u.get("value") for u in body.get("urls") or []],
            "createdAt": now,
            "updatedAt": now,
            "lastInteractionAt": now,
            "lastAdvancedAt": now,
            "snoozedUntil": None,
            "archived": None,
            "stage": "applicant-new",
            "stageChanges": [],
            "owner": None,
            "tags": [],
            "sources": [body["source"]] if body.get("source") else [],
            "origin": body.get("origin", "applied"),
            "sourcedBy": None,
            "applications": [app_id],
            "followers": [],
            "dataProtection": None,
            "isAnonymized": False,
            "opportunityLocation": posting["categories"]["location"],
            "_posting": posting["id"],
        }
    )
    return app_id


def _public_opportunity(st: SandboxState, opp: dict[str, Any], expand: list[str]) -> dict[str, Any]:
    out = {k: v for k, v in opp.items() if not k.startswith("_")}
    out["tags"] = list(opp["tags"])
    if "stage" in expand:
        out["stage"] = next((dict(s) for s in STAGES if s["id"] == opp["stage"]), {"id": opp["stage"], "text": ""})
    if "applications" in expand:
        out["applications"] = [
            {
                "id": a["id"],
                "opportunityId": opp["id"],
                "posting": a["posting"],
                "createdAt": a["receivedAt"],
                "type": "posting",
            }
            for a in st.applications
            if a["id"] in opp["applications"]
        ]
    return out


ORIGINS = ("agency", "applied", "internal", "referred", "sourced", "university")


def _performer(st: SandboxState) -> dict[str, Any]:
    """The active user named by `perform_as` (required by Lever's writes), or a 400."""
    user_id = request.args.get("perform_as", "")
    user = next((u for u in st.users if u["id"] == user_id and not u["deactivatedAt"]), None)
    if user is None:
        abort(_error(400, "BadRequestError", "perform_as must be the id of an active user"))
    return user


def _opportunity_body() -> tuple[dict[str, Any], Any]:
    """A Create-an-opportunity body as JSON or as multipart (arrays as `emails[]`, phones as `phones[0][value]`,
    the resume as `resumeFile`), and the resume file if any."""
    if request.mimetype == "multipart/form-data":
        form = request.form
        body: dict[str, Any] = {k: form[k] for k in ("name", "headline", "location", "origin", "contact") if k in form}
        for name in ("emails", "links", "tags", "sources", "postings"):
            if f"{name}[]" in form:
                body[name] = form.getlist(f"{name}[]")
        phones = sorted(
            (k for k in form if re.fullmatch(r"phones\[\d+\]\[value\]", k)), key=lambda k: int(k[7 : k.index("]")])
        )
        if phones:
            body["phones"] = [{"value": form[k]} for k in phones]
        return body, request.files.get("resumeFile")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(_error(400, "BadRequestError", "Body must be a JSON object"))
    return data, None


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        abort(_error(400, "BadRequestError", f"{name} must be a list of strings"))
    return value


def _sourcing_routes(app: Flask, st: SandboxState) -> None:
    """Create an opportunity, notes and users: what a sourcing integration uses."""

    @app.post("/v1/opportunities")
    def create_opportunity() -> Any:
        """Create an opportunity: one posting at most; an email that matches links it to the existing contact."""
        body, resume = _opportunity_body()
        postings = _strings(body, "postings")
        emails = [e.strip().lower() for e in _strings(body, "emails")]
        if len(postings) > 1:
            return _error(400, "BadRequestError", "An opportunity can be created for one posting at most")
        origin = body.get("origin", "sourced")
        if origin not in ORIGINS:
            return _error(400, "BadRequestError", f"origin must be one of {', '.join(ORIGINS)}")
        phones = body.get("phones", [])
        if not isinstance(phones, list) or not all(isinstance(p, dict) for p in phones):
            return _error(400, "BadRequestError", "phones must be a list of {value, type}")
        with st.lock:
            user = _performer(st)
            if postings and postings[0] not in st.postings:
                return _error(400, "BadRequestError", "That posting doesn't exist")
            contact = next((st.contacts[e] for e in emails if e in st.contacts), None) or str(uuid.uuid4())
            for e in emails:
                st.contacts.setdefault(e, contact)
            now = _now_ms()
            file_info = None
            if resume is not None:
                content = resume.read()
                file_info = {
                    "name": resume.filename,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
            opp = {
                "id": str(uuid.uuid4()),
                "name": str(body.get("name") or ""),
                "contact": contact,
                "emails": emails,
                "headline": str(body.get("headline") or ""),
                "phones": phones,
                "confidentiality": "non-confidential",
                "location": str(body.get("location") or ""),
                "links": _strings(body, "links"),
                "createdAt": now,
                "updatedAt": now,
                "lastInteractionAt": now,
                "lastAdvancedAt": now,
                "snoozedUntil": None,
                "archived": None,
                "stage": "lead-new",
                "stageChanges": [],
                "owner": user["id"],
                "tags": list(dict.fromkeys(_strings(body, "tags"))),
                "sources": _strings(body, "sources"),
                "origin": origin,
                "sourcedBy": user["id"] if origin == "sourced" else None,
                "applications": [],
                "followers": [user["id"]],
                "dataProtection": None,
                "isAnonymized": False,
                "opportunityLocation": None,
                "_posting": postings[0] if postings else None,
                "_resume": file_info,
                "_perform_as": user["id"],
            }
            st.opportunities.append(opp)
            return {"data": _public_opportunity(st, opp, [])}, 201

    @app.post("/v1/opportunities/<opportunity_id>/notes")
    def create_note(opportunity_id: str) -> Any:
        """Create a note as the `perform_as` user; `value` is required."""
        data = request.get_json(silent=True)
        body: dict[str, Any] = data if isinstance(data, dict) else {}
        value = body.get("value")
        if not isinstance(value, str) or not value:
            return _error(400, "BadRequestError", "value is required")
        with st.lock:
            user = _performer(st)
            if not any(o["id"] == opportunity_id for o in st.opportunities):
                return _error(404, "ResourceNotFound", "That opportunity doesn't exist")
            note = {
                "id": str(uuid.uuid4()),
                "opportunity": opportunity_id,
                "user": user["id"],
                "text": value,
                "secret": bool(body.get("secret", False)),
                "createdAt": _now_ms(),
                "deletedAt": None,
            }
            st.notes.append(note)
        return {"data": {"noteId": note["id"]}}, 201

    @app.get("/v1/opportunities/<opportunity_id>/notes")
    def list_notes(opportunity_id: str) -> Any:
        with st.lock:
            notes = [
                {k: v for k, v in n.items() if k != "opportunity"}
                for n in st.notes
                if n["opportunity"] == opportunity_id
            ]
        return _page(notes, "notes")

    @app.get("/v1/users")
    def list_users() -> Any:
        """List users: `email` filters (canonicalized), deactivated users only with includeDeactivated=true."""
        emails = [e.strip().lower() for e in request.args.getlist("email")]
        with_gone = request.args.get("includeDeactivated", "false").lower() == "true"
        users = [u for u in st.users if (with_gone or not u["deactivatedAt"]) and (not emails or u["email"] in emails)]
        return _page(users, "users")


def _control_routes(app: Flask, st: SandboxState) -> None:
    """Switches for tests and people, under /_sandbox/."""

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def state() -> dict[str, Any]:
        with st.lock:
            sw = st.switches
            return {
                "maintenance": sw.maintenance,
                "mode": sw.mode,
                "window_s": sw.window_s,
                "apply_per_s": sw.apply_per_s,
                "apply_burst": sw.apply_burst,
                "per_s": sw.per_s,
                "burst": sw.burst,
                "retry_after": sw.retry_after,
                "latency_s": sw.latency_s,
                "latency_by_endpoint": sw.latency_by_endpoint,
                "drop": sw.drop,
                "fail": sw.fail,
                "forbid": sorted(sw.forbid),
                "postings": len(st.postings),
                "applications": len(st.applications),
                "requests": len(st.requests),
            }

    def wants_page() -> bool:
        """A browser's request: HTML named outright and preferred to JSON. Chromium's Accept lists text/html first but
        also application/signed-exchange with a parameter, which Werkzeug's `best` prefers; `*/*` alone (curl,
        requests) is a script and gets JSON."""
        accept = request.accept_mimetypes
        html = max((q for value, q in accept if value == "text/html"), default=0)
        return html > 0 and html >= accept["application/json"]

    @app.get("/_sandbox/")
    def control_state() -> Any:
        """The switches as JSON, or, for a person in a browser, a page with a maintenance button."""
        data = state()
        if wants_page():
            flip = "off" if data["maintenance"] else "on"
            rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(json.dumps(v))}</td></tr>" for k, v in data.items())
            return (
                f"<!doctype html><title>Lever sandbox</title><h1>Lever sandbox</h1><table>{rows}</table>"
                f'<form method="post" action="/_sandbox/maintenance"><input type="hidden" name="on" '
                f'value="{flip}"><button>Switch maintenance mode {flip}</button></form>'
                '<form method="post" action="/_sandbox/postings"><button>Publish a new posting</button></form>'
                "<p>A new posting reaches the job list at the site's next refresh of its postings, and its job "
                "alerts the outbox.</p>"
                "<p>JSON switches: POST /_sandbox/maintenance, limits, latency, drop, fail, forbid, postings, "
                "reset; GET /_sandbox/received.</p>"
                '<p><a href="/_sandbox/outbox">Outbox</a>: the emails the site sent.</p>'
            )
        return data

    @app.post("/_sandbox/maintenance")
    def maintenance() -> Any:
        on = request.form["on"] == "on" if "on" in request.form else bool(body().get("on", True))
        with st.lock:
            st.switches.maintenance = on
        if request.form:
            return redirect("/_sandbox/", 303)
        return state()

    @app.post("/_sandbox/limits")
    def limits() -> Any:
        data = body()
        with st.lock:
            sw = st.switches
            if data.get("mode", sw.mode) not in ("bucket", "window"):
                return _error(400, "BadRequestError", 'mode is "bucket" or "window"')
            sw.mode = str(data.get("mode", sw.mode))
            for name in ("apply_per_s", "apply_burst", "per_s", "burst", "window_s"):
                if name in data:
                    setattr(sw, name, float(data[name]))
            if "retry_after" in data:
                sw.retry_after = bool(data["retry_after"])
            st.reset_buckets()
        return state()

    @app.post("/_sandbox/latency")
    def latency() -> Any:
        """Hold requests on `path` for `seconds` before processing them; with `endpoint` (e.g. "postings.apply",
        "opportunities.create", "opportunities.notes") that endpoint's alone, beside the others (0 ends it)."""
        data = body()
        with st.lock:
            if "endpoint" in data:
                seconds = float(data.get("seconds", 0))
                st.switches.latency_by_endpoint[str(data["endpoint"])] = seconds
                if not seconds:
                    del st.switches.latency_by_endpoint[str(data["endpoint"])]
                return state()
            st.switches.latency_s = float(data.get("seconds", 0))
            st.switches.latency_path = str(data.get("path", ""))
        return state()

    def _rule(data: dict[str, Any]) -> dict[str, Any]:
        rule = {"path": str(data.get("path", "")), "count": int(data.get("count", 1)), "tag": str(data.get("tag", ""))}
        if "endpoint" in data:
            rule["endpoint"] = str(data["endpoint"])
        return rule

    def _clear(rules: list[dict[str, Any]], data: dict[str, Any]) -> None:
        """`{"clear": true}` ends every such rule, `{"clear": true, "tag": t}` those added with that tag."""
        rules[:] = [r for r in rules if "tag" in data and r.get("tag") != str(data["tag"])]

    @app.post("/_sandbox/drop")
    def drop() -> Any:
        """Drop the connection after processing the next `count` requests on `path` (and `endpoint`)."""
        data = body()
        with st.lock:
            if data.get("clear"):
                _clear(st.switches.drop, data)
                return state()
            st.switches.drop.append(_rule(data))
        return state()

    @app.post("/_sandbox/fail")
    def fail() -> Any:
        """Answer the next `count` requests on `path` (and `endpoint`) with `status`, unprocessed, or with `"after":
        true` processed first (a 2xx turned into the error); a 429 carries `retry_after` when given. `{"clear":
        true}` ends every such failure at once (an outage that lasts until Lever recovers: a large count, then
        clear), or with `tag` those added with that tag."""
        data = body()
        with st.lock:
            if data.get("clear"):
                _clear(st.switches.fail, data)
                return state()
            st.switches.fail.append(
                {
                    **_rule(data),
                    "status": int(data.get("status", 500)),
                    "message": str(data.get("message", "Injected failure")),
                    "after": bool(data.get("after", False)),
                    "retry_after": int(data.get("retry_after", 0)),
                }
            )
        return state()

    @app.post("/_sandbox/forbid")
    def forbid() -> Any:
        with st.lock:
            st.switches.forbid = set(body().get("endpoints", []))
        return state()

    @app.post("/_sandbox/postings")
    def publish_posting() -> Any:
        """Publish a new posting on the public site: JSON `{"text", "team", "department", "location", "commitment",
        "workplace"}` (each optional), or the page's button (a form: the next of the seed's roles)."""
        data = {
            k: str(v)[:200]
            for k, v in body().items()
            if k in ("text", "team", "department", "location", "commitment", "workplace") and v
        }
        with st.lock:
            st.published += 1
            posting = new_posting(st.published, now_ms=_now_ms(), **data)
            st.postings[posting["id"]] = posting
            st.questions[posting["id"]] = make_questions(posting, len(st.postings))
        if request.form or not request.is_json:
            return redirect("/_sandbox/", 303)
        return {"id": posting["id"], "text": posting["text"], "categories": posting["categories"]}, 201

    @app.post("/_sandbox/postings/<posting_id>")
    def change_posting(posting_id: str) -> Any:
        data = body()
        with st.lock:
            if posting_id not in st.postings:
                return _error(404, "ResourceNotFound", "No such posting")
            if data.get("delete"):
                del st.postings[posting_id]
            else:
                st.postings[posting_id].update({k: v for k, v in data.items() if k in ("state", "text")})
        return state()

    @app.get("/_sandbox/received")
    def received() -> Any:
        with st.lock:
            return {
                "requests": st.requests,
                "applications": st.applications,
                "uploads": len(st.uploads),
                "opportunities": len(st.opportunities),
                "webhooks": st.webhooks,
                "notes": st.notes,
            }

    @app.get("/_sandbox/opportunities")
    def opportunities() -> Any:
        """Every opportunity as Lever holds it (tags, stage, archive state), for tests and people; with the posting,
        the resume received and the `perform_as` user of a created one."""
        with st.lock:
            return {
                "data": [
                    {
                        **_public_opportunity(st, o, []),
                        "posting": o["_posting"],
                        "resume": o.get("_resume"),
                        "performAs": o.get("_perform_as"),
                    }
                    for o in st.opportunities
                ]
            }

    @app.post("/_sandbox/webhooks")
    def webhooks() -> Any:
        """Send Lever's webhooks to `url`, signed with `token`; `bad_signature` signs them wrongly."""
        data = body()
        with st.lock:
            sw = st.switches
            sw.webhook_url = str(data.get("url", ""))
            sw.webhook_token = str(data.get("token", ""))
            sw.webhook_bad_signature = bool(data.get("bad_signature", False))
        return state()

    def _opportunity(opportunity_id: str) -> dict[str, Any]:
        opp = next((o for o in st.opportunities if o["id"] == opportunity_id), None)
        if opp is None:
            abort(_error(404, "ResourceNotFound", "No such opportunity"))
        return opp

    def _ids(opp: dict[str, Any]) -> dict[str, Any]:
        return {"opportunityId": opp["id"], "candidateId": opp["id"], "contactId": opp["contact"]}

    @app.post("/_sandbox/opportunities/<opportunity_id>/stage")
    def move(opportunity_id: str) -> Any:
        """A recruiter moves the opportunity to `stage` (an id): candidateStageChange."""
        stage = str(body().get("stage", ""))
        if stage not in [s["id"] for s in STAGES]:
            return _error(400, "BadRequestError", "Unknown stage")
        with st.lock:
            opp = _opportunity(opportunity_id)
            now = _now_ms()
            event = _event("candidateStageChange", {**_ids(opp), "toStageId": stage, "fromStageId": opp["stage"]})
            opp["stageChanges"].append(
                {
                    "toStageId": stage,
                    "toStageIndex": [s["id"] for s in STAGES].index(stage),
                    "userId": None,
                    "updatedAt": now,
                }
            )
            opp.update(stage=stage, updatedAt=now, lastAdvancedAt=now)
        return {"webhooks": _send_webhooks(st, [event])}

    @app.post("/_sandbox/opportunities/<opportunity_id>/archive")
    def archive(opportunity_id: str) -> Any:
        """A recruiter archives the opportunity with `reason` (an id; null unarchives): candidateArchiveChange, and
        candidateHired for the hired reason."""
        reason = body().get("reason")
        found = next((a for a in ARCHIVE_REASONS if a["id"] == reason), None)
        if reason is not None and found is None:
            return _error(400, "BadRequestError", "Unknown archive reason")
        with st.lock:
            opp = _opportunity(opportunity_id)
            now = _now_ms()
            before = opp["archived"]
            opp.update(archived={"reason": reason, "archivedAt": now} if reason else None, updatedAt=now)
            events = [
                _event("candidateArchiveChange", {**_ids(opp), "fromArchived": before, "toArchived": opp["archived"]})
            ]
            if found and found["type"] == "hired":
                events.append(_event("candidateHired", _ids(opp)))
        return {"webhooks": _send_webhooks(st, events)}

    @app.post("/_sandbox/contacts/<contact_id>/delete")
    def delete_contact(contact_id: str) -> Any:
        """A recruiter deletes the person: every opportunity of the contact goes, one candidateDeleted each."""
        with st.lock:
            gone = [o for o in st.opportunities if o["contact"] == contact_id]
            st.opportunities = [o for o in st.opportunities if o["contact"] != contact_id]
            st.contacts = {e: c for e, c in st.contacts.items() if c != contact_id}
            events = [_event("candidateDeleted", {**_ids(o), "deletedBy": None}) for o in gone]
        return {"webhooks": _send_webhooks(st, events)}

    @app.post("/_sandbox/reset")
    def reset() -> Any:
        st.reset()
        return state()
