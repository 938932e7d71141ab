"""Load from several clients, as candidates, integrators and recruiters send it: applications through the JSON API
(with and without a resume, with and without an Idempotency-Key), talent sign-ups, and captures by a signed-in
recruiter. Every submission carries an email of its own, so what Lever holds can be counted per submission whatever
marker the site sends; every attempt is recorded with its answer and its time."""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from jobsite.console import accounts
from jobsite.sandbox import API_KEY
from jobsite.sourcing import events

from ..helpers import required_answers, resume_pdf
from .harness import RECRUITER, Cluster

CLIENT_TIMEOUT_S = 20.0  # beyond the 15 s bound, so a slow answer is seen as slow rather than cut
MAX_ATTEMPTS = 4
KINDS = {"apply": 3, "apply_file": 2, "talent": 2, "capture": 2}
PDF = resume_pdf(1)


@dataclass
class Submission:
    n: int
    kind: str
    email: str
    keyed: bool  # an Idempotency-Key or a capture's client_id: a retry is the same submission
    sends: int = 1  # opportunities it should make in Lever (a capture: one per posting)
    note: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    receipt: str = ""

    @property
    def accepted(self) -> bool:
        return any(200 <= a["status"] < 300 for a in self.attempts if a["status"])

    @property
    def unknown(self) -> bool:
        return any(not a["status"] for a in self.attempts)


class Load:
    def __init__(self, cluster: Cluster, seed: int, record: Any, clients: int = 4, rate: float = 1.5):
        self.cluster, self.seed, self.record = cluster, seed, record
        self.clients, self.rate = clients, rate
        self.submissions: list[Submission] = []
        self.other: list[dict[str, Any]] = []  # requests that submit nothing (signing in, reading a token)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.counter = 0

    def setup(self) -> None:
        """The postings and their forms, a recruiter's account and an event to capture at."""
        postings = _lever_get(self.cluster.sandbox_url, "postings", state="published")
        self.forms: dict[str, dict[str, Any]] = {}
        for p in postings:
            if "public" in (p["distributionChannels"] or []) and len(p["categories"]["allLocations"]) == 1:
                self.forms[p["id"]] = _lever_get(self.cluster.sandbox_url, f"postings/{p['id']}/apply")
        self.plain = [pid for pid, f in self.forms.items() if not _needs_resume(f)][:3]
        self.with_file = [pid for pid, f in self.forms.items() if _needs_resume(f)][:3]
        r = self.cluster.direct_redis()
        accounts.add_user(r, *RECRUITER, accounts.Role.ADMIN)
        self.event = events.add(r, "Nemesis fair", "", self.plain[:2], who="nemesis")
        r.close()

    def start(self) -> None:
        for i in range(self.clients):
            t = threading.Thread(target=self._client, args=(i,), name=f"nemesis-client-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, timeout: float = 90) -> None:
        """Stop sending; wait (bounded) for the requests in flight and their retries."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))

    # One client

    def _client(self, i: int) -> None:
        rng = random.Random(self.seed * 1009 + i)
        session = requests.Session()
        csrf = ""
        while not self.stop.is_set():
            kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
            if kind == "capture" and not csrf:
                csrf = self._sign_in(session)
                if not csrf:
                    self.stop.wait(1)
                    continue
            with self.lock:
                self.counter += 1
                n = self.counter
            sub = Submission(n, kind, f"nemesis-{self.seed}-{n}@example.com", keyed=rng.random() < 0.5)
            with self.lock:
                self.submissions.append(sub)
            try:
                if self._send(session, rng, sub, csrf) == 401:  # the session ended: sign in again
                    csrf = ""
            except Exception as e:
                self.record({"type": "client_error", "n": n, "error": repr(e)})
            self.stop.wait(rng.expovariate(self.rate / self.clients))

    def _sign_in(self, session: requests.Session) -> str:
        """A recruiter's session and the CSRF token the capture page carries ("" if the site could not say)."""
        token = _csrf(self._call(session, "GET", "/admin/login", what="sign-in page")["text"])
        if not token:
            return ""
        signed_in = self._call(
            session,
            "POST",
            "/admin/login",
            what="sign-in",
            allow_redirects=False,
            data={"email": RECRUITER[0], "password": RECRUITER[1], "csrf_token": token},
        )
        if signed_in["status"] != 302:  # the login page again carries a token too: not signed in
            return ""
        return _csrf(self._call(session, "GET", "/admin/events", what="events page", allow_redirects=False)["text"])

    def _call(self, session: requests.Session, method: str, path: str, what: str, **kw: Any) -> dict[str, Any]:
        attempt = self._attempt(session, method, path, **kw)
        attempt["what"] = what
        with self.lock:
            self.other.append(attempt)
        self.record({"type": "request", **{k: v for k, v in attempt.items() if k != "text"}})
        return {"status": attempt["status"], "text": attempt.pop("text", "")}

    def _attempt(self, session: requests.Session, method: str, path: str, **kw: Any) -> dict[str, Any]:
        t0 = time.time()
        out: dict[str, Any] = {"method": method, "path": path, "t0": t0}
        try:
            resp = session.request(method, self.cluster.web_url + path, timeout=(5, CLIENT_TIMEOUT_S), **kw)
            out.update(status=resp.status_code, retry_after=resp.headers.get("Retry-After"), text=resp.text[:20000])
        except requests.RequestException as e:
            out.update(status=0, error=type(e).__name__)
        out["t1"] = time.time()
        return out

    def _send(self, session: requests.Session, rng: random.Random, sub: Submission, csrf: str) -> int:
        """Send one submission, again while the answer allows (returns the last answer's status)."""
        headers: dict[str, str] = {}
        if sub.kind in ("apply", "apply_file"):
            posting = rng.choice(self.with_file if sub.kind == "apply_file" else self.plain)
            path = f"/api/v1/postings/{posting}/applications"
            body = _lever_body(self.forms[posting], sub)
            if sub.kind == "apply_file":
                kw: dict[str, Any] = {
                    "data": {"application": json.dumps(body)},
                    "files": {"resume": ("cv.pdf", PDF, "application/pdf")},
                }
            else:
                kw = {"json": body}
            if sub.keyed:
                headers["Idempotency-Key"] = str(uuid.uuid4())
        elif sub.kind == "talent":
            path = "/api/v1/talent"
            kw = {"json": {"name": f"Nemesis {sub.n}", "email": sub.email, "consent": True}}
            if sub.keyed:
                headers["Idempotency-Key"] = str(uuid.uuid4())
        else:
            sub.keyed = True  # the capture page's client_id
            postings = rng.sample(self.event.postings, rng.randint(0, len(self.event.postings)))
            sub.sends = max(1, len(postings))
            sub.note = f"nemesis note {self.seed}-{sub.n}"
            path = f"/admin/api/events/{self.event.id}/people"
            kw = {
                "json": {
                    "name": f"Nemesis {sub.n}",
                    "email": sub.email,
                    "postings": postings,
                    "note": sub.note,
                    "rating": 3,
                    "client_id": uuid.uuid4().hex,
                }
            }
            headers["X-CSRF-Token"] = csrf
        for _ in range(MAX_ATTEMPTS):
            attempt = self._attempt(session, "POST", path, headers=headers, **kw)
            text = attempt.pop("text", "")
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                sub.receipt = sub.receipt or json.loads(text).get("receipt", "")
            sub.attempts.append(attempt)
            self.record(
                {"type": "request", "n": sub.n, "kind": sub.kind, "email": sub.email, "keyed": sub.keyed, **attempt}
            )
            status = attempt["status"]
            if status == 503 or (not status and sub.keyed):  # nothing stored, or the same submission again
                self.stop.wait(
                    min(
                        3.0,
                        float(attempt.get("retry_after") or 1)
                        if str(attempt.get("retry_after") or "").isdigit()
                        else 1.0,
                    )
                )
                continue
            return status
        return sub.attempts[-1]["status"]


def _lever_get(sandbox_url: str, path: str, **params: str) -> Any:
    """A read from the sandbox's API, waiting out its rate limit (setup reads every form at once)."""
    for _ in range(20):
        resp = requests.get(f"{sandbox_url}/v1/{path}", params=params, auth=(API_KEY, ""), timeout=10)
        if resp.status_code != 429:
            resp.raise_for_status()
            return resp.json()["data"]
        time.sleep(0.5)
    raise TimeoutError(f"the sandbox kept answering 429 to {path}")


def _needs_resume(form: dict[str, Any]) -> bool:
    return any(q["name"] == "resume" and q["required"] for q in form["personalInformation"])


def _lever_body(form: dict[str, Any], sub: Submission) -> dict[str, Any]:
    custom = required_answers(form, sub.n)
    return {
        "personalInformation": [
            {"name": "fullName", "value": f"Nemesis {sub.n}"},
            {"name": "email", "value": sub.email},
        ],
        "customQuestions": custom,
    }


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html or "")
    return found.group(1) if found else ""
