"""The Lever Data API v1 client: the only code in jobsite that speaks HTTP to Lever.

Errors are typed by what the caller must do: wait for maintenance to end (`LeverUnavailable`), slow down
(`LeverRateLimited`), give up and tell a human (`LeverRejected`, `LeverAuthError`), or, for a POST whose outcome is
unknown after a timeout or a dropped connection, check before sending again (`LeverConnectionError` with
`outcome_unknown`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from urllib3.exceptions import NewConnectionError

DEFAULT_TIMEOUT_S = (3.05, 20.0)  # (connect, read)
RATE_LIMITED_DEFAULT_S = 1.0  # a 429 without Retry-After pauses every worker a whole window (Lever documents none)

# Each endpoint's limits, as data: Lever counts every call against its all-calls limit ("lever", 10/s) and an
# application against its own too ("apply", 2/s). Every request takes a slot on its endpoint's limits.
LIMITS: dict[str, tuple[str, ...]] = {"postings.apply": ("apply", "lever")}
ALL_CALLS = ("lever",)  # every endpoint not in LIMITS
# The writes Lever has no idempotency key for and that must not be repeated: each goes out only through the
# exactly-once sender's fence (delivery.sender.Fence), which the pacing runs around its slot.
FENCED = {("POST", "postings.apply"), ("POST", "opportunities.create"), ("POST", "opportunities.notes")}


class LeverError(Exception):
    """Any failed Lever call. `status` is the HTTP status (None without a response); `message` is Lever's text."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None, request_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.request_id = request_id


class LeverUnavailable(LeverError):
    """503, or any other 5xx: Lever is in maintenance mode or failing. Retry later with backoff."""


class LeverRateLimited(LeverError):
    """429: too many requests. `retry_after` holds Retry-After in seconds when Lever sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after

    @property
    def pause_s(self) -> float:
        """How long every worker pauses after it: Retry-After, or a whole window without one."""
        return self.retry_after if self.retry_after is not None else RATE_LIMITED_DEFAULT_S


class LeverRejected(LeverError):
    """A 4xx other than 401/403/429: Lever refuses this request as it is. Retrying will not help."""


class LeverAuthError(LeverRejected):
    """401 or 403: the API key is wrong or lacks permission for this endpoint."""


class LeverConnectionError(LeverError):
    """No usable response. `outcome_unknown` is True when the request may have been processed (timeout or a
    connection dropped after sending); a connect failure means it was never sent."""

    def __init__(self, message: str, *, outcome_unknown: bool):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


@dataclass(frozen=True)
class Stage:
    """A stage of the account's pipeline (New applicant, New lead and Offer exist in every account)."""

    id: str
    text: str


@dataclass(frozen=True)
class ArchiveReason:
    """Why an opportunity was archived: `hired` for "Hired" (in every account), any other reason means not hired."""

    id: str
    text: str
    hired: bool


@dataclass(frozen=True)
class Upload:
    """A file Lever holds for 24 h, referenced by `uri` in an application."""

    uri: str
    expires_at_ms: int


def error_for(response: requests.Response) -> LeverError:
    """Map an error response to the typed error the caller must handle."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:500]
    message = body.get("message") if isinstance(body, dict) else None
    message = str(message or body or response.reason or "no message")
    kw = {"status": response.status_code, "body": body, "request_id": response.headers.get("X-Request-Id")}
    status = response.status_code
    if status == 429:
        return LeverRateLimited(message, retry_after=_retry_after(response.headers.get("Retry-After")), **kw)
    if status in (401, 403):
        return LeverAuthError(message, **kw)
    if 400 <= status < 500:
        return LeverRejected(message, **kw)
    return LeverUnavailable(message, **kw)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given as seconds (the HTTP-date form is not used by APIs like Lever's)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class Pace(Protocol):
    """The pacing mounted on a client (lever.pacing.Pacer): a slot before each request, every answer after it."""

    def within(self, max_wait_s: float) -> Pace: ...

    def fenced(
        self, before_send: Callable[[float], None], after_wait: Callable[[], None]
    ) -> AbstractContextManager[None]: ...

    def take(self, names: tuple[str, ...], *, fenced: bool = False) -> Any: ...

    def answered(self, taken: Any, error: BaseException | None) -> None: ...


class LeverClient:
    """A thin client on one `requests.Session`, with HTTP basic auth (key as user, empty password), and the pacing
    mounted on it (`pace`): every request, each page of a list too, waits for its slot on its endpoint's limits
    (LIMITS), and every answer goes back to the pacing (a 429 slows every worker). Only a client without `pace`
    (tests, the sandbox's own tools) sends unpaced."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT_S,
        session: requests.Session | None = None,
        observe: Any = None,
        pace: Pace | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.auth = (api_key, "")
        self.session.headers["User-Agent"] = "jobsite"
        self._observe = observe  # optional callback(endpoint, status, seconds) for metrics
        self.pace = pace

    def __repr__(self) -> str:
        return f"LeverClient(base_url={self.base_url!r})"

    def within(self, max_wait_s: float) -> LeverClient:
        """This client (its session too) for a caller that waits at most `max_wait_s` for each slot."""
        paced = copy.copy(self)
        paced.pace = self.pace.within(max_wait_s) if self.pace else None
        return paced

    def _request(self, method: str, path: str, endpoint: str, **kw: Any) -> Any:
        # Built before the slot (the body encoded, the headers and the environment's settings merged, as
        # Session.request does), so that only the send is left at the slot: a loaded process that is preempted while
        # it builds a request must not make it reach Lever later than its slot.
        prepared = self.session.prepare_request(requests.Request(method, self.base_url + path, **kw))
        options = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
        if self.pace is None:
            return self._send(prepared, endpoint, options)
        taken = self.pace.take(LIMITS.get(endpoint, ALL_CALLS), fenced=(method, endpoint) in FENCED)
        try:
            answer = self._send(prepared, endpoint, options)
        except LeverError as e:
            self.pace.answered(taken, e)
            raise
        self.pace.answered(taken, None)
        return answer

    def _send(self, prepared: requests.PreparedRequest, endpoint: str, options: Any) -> Any:
        method = prepared.method
        started = time.monotonic()
        status: int | str = "error"
        try:
            response = self.session.send(prepared, timeout=self.timeout, allow_redirects=True, **options)
            status = response.status_code
        except requests.ConnectTimeout as e:
            raise LeverConnectionError(
                f"could not connect to Lever: {type(e).__name__}", outcome_unknown=False
            ) from None
        except requests.ConnectionError as e:  # SSLError too: a TLS EOF may come after the body was sent
            raise LeverConnectionError(
                f"connection to Lever failed: {type(e).__name__}", outcome_unknown=_maybe_sent(e) and method != "GET"
            ) from None
        except requests.Timeout as e:
            raise LeverConnectionError(
                f"Lever did not answer in time: {type(e).__name__}", outcome_unknown=method != "GET"
            ) from None
        finally:
            if self._observe:
                self._observe(endpoint, status, time.monotonic() - started)
        if response.status_code >= 400:
            raise error_for(response)
        try:
            return response.json()
        except ValueError:
            raise LeverUnavailable("Lever answered with a body that is not JSON", status=response.status_code) from None

    # Postings

    def _pages(self, path: str, endpoint: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Yield the pages of a Lever list, following `next` while `hasNext` (the token is passed back verbatim)."""
        query = {"limit": 100, **params}
        while True:
            page = self._request("GET", path, endpoint, params=query)
            yield page.get("data", [])
            if not page.get("hasNext") or not page.get("next"):
                return
            query = {**query, "offset": page["next"]}

    def iter_posting_pages(self, **params: Any) -> Iterator[list[dict[str, Any]]]:
        """Yield List-all-postings pages. Params are Lever's query parameters."""
        return self._pages("/postings", "postings.list", params)

    def list_postings(self, **params: Any) -> list[dict[str, Any]]:
        """All postings matching `params`, every page."""
        return [p for page in self.iter_posting_pages(**params) for p in page]

    def get_posting(self, posting_id: str) -> dict[str, Any]:
        """Retrieve a single posting."""
        return self._request("GET", f"/postings/{_id(posting_id)}", "postings.get")["data"]

    def get_application_questions(self, posting_id: str) -> dict[str, Any]:
        """Retrieve posting application questions (the form an application must mirror)."""
        return self._request("GET", f"/postings/{_id(posting_id)}/apply", "postings.questions")["data"]

    # Applications

    def upload_file(self, filename: str, content: bytes, content_type: str) -> Upload:
        """Upload a file for use in an application within 24 h."""
        data = self._request("POST", "/uploads", "uploads.create", files={"file": (filename, content, content_type)})[
            "data"
        ]
        return Upload(uri=data["uri"], expires_at_ms=int(data.get("expiresAt") or 0))

    def apply(self, posting_id: str, body: dict[str, Any], *, send_confirmation_email: bool = False) -> str:
        """Apply to a posting; returns Lever's applicationId (the reply carries nothing else).

        Args:
            send_confirmation_email: ask Lever to email the candidate its own confirmation (Lever's default: no).
        """
        params = {"send_confirmation_email": "true"} if send_confirmation_email else None
        data = self._request("POST", f"/postings/{_id(posting_id)}/apply", "postings.apply", json=body, params=params)[
            "data"
        ]
        return str(data["applicationId"])

    # Stages

    def read_stages(self, *, limit: int = 100) -> list[Stage]:
        """The first page of List all stages, at most `limit` (1-100). Lever answers it from a small table, it needs
        the key, and maintenance blocks it like every Data API call but the postings reads: with `limit=1` it is the
        delivery gate's light check that maintenance has ended.

        Raises:
            LeverUnavailable: 503 while Lever is in maintenance (or another 5xx).
            LeverAuthError: 401/403, the key may not read stages.
        """
        page = self._request("GET", "/stages", "stages.list", params={"limit": limit})
        return [Stage(id=str(s["id"]), text=str(s.get("text") or "")) for s in page.get("data", [])]

    def list_stages(self) -> list[Stage]:
        """Every stage of the account (List all stages, every page)."""
        return [
            Stage(id=str(s["id"]), text=str(s.get("text") or ""))
            for page in self._pages("/stages", "stages.list", {})
            for s in page
        ]

    def list_archive_reasons(self) -> list[ArchiveReason]:
        """Every archive reason of the account (List all archive reasons, every page)."""
        return [
            ArchiveReason(id=str(a["id"]), text=str(a.get("text") or ""), hired=a.get("type") == "hired")
            for page in self._pages("/archive_reasons", "archive_reasons.list", {})
            for a in page
        ]

    # Opportunities

    def add_tags(self, opportunity_id: str, tags: list[str]) -> list[str] | None:
        """Update opportunity tags: add `tags` (Lever creates unknown ones). Returns the opportunity's tags when
        Lever's answer lists them (its answer body is undocumented), else None.

        Raises:
            LeverUnavailable: 503 in maintenance, or another 5xx: try again later.
            LeverRejected: 404 when the opportunity is gone (deleted in Lever).
        """
        answer = self._request(
            "POST", f"/opportunities/{_id(opportunity_id)}/addTags", "opportunities.tags", json={"tags": tags}
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        found = data.get("tags") if isinstance(data, dict) else None
        return [str(t) for t in found] if isinstance(found, list) else None

    def iter_opportunity_pages(self, **params: Any) -> Iterator[list[dict[str, Any]]]:
        """Yield List-all-opportunities pages (filters such as email, posting_id, created_at_start)."""
        return self._pages("/opportunities", "opportunities.list", params)

    def list_opportunities(self, **params: Any) -> list[dict[str, Any]]:
        """All opportunities matching Lever's filters, every page."""
        return [o for page in self.iter_opportunity_pages(**params) for o in page]

    # Sourcing

    def create_opportunity(
        self, body: dict[str, Any], *, perform_as: str, resume: tuple[str, bytes, str] | None = None
    ) -> dict[str, Any]:
        """Create an opportunity (not the deprecated Create a candidate) owned by the user `perform_as`. `body` names
        one posting at most (Lever rejects more); an email Lever knows links it to that contact. With `resume`
        (filename, bytes, content type) the body goes as multipart, the file as `resumeFile`. There is no idempotency
        key: after an unknown outcome, look for it (List opportunities) before sending again.

        Raises:
            LeverRejected: 400 for more than one posting, an unknown posting or an inactive `perform_as` user.
            LeverConnectionError: with `outcome_unknown` when it may have been created.
        """
        postings = body.get("postings") or []
        if len(postings) > 1:
            raise LeverRejected("Create an opportunity takes one posting at most", status=None)
        params = {"perform_as": _id(perform_as)}
        if resume is None:
            answer = self._request("POST", "/opportunities", "opportunities.create", params=params, json=body)
        else:
            answer = self._request(
                "POST",
                "/opportunities",
                "opportunities.create",
                params=params,
                data=_multipart_fields(body),
                files={"resumeFile": resume},
            )
        return dict(answer["data"])

    def remove_tags(self, opportunity_id: str, tags: list[str]) -> None:
        """Update opportunity tags: remove `tags` (those it does not carry are ignored).

        Raises:
            LeverUnavailable: 503 in maintenance, or another 5xx: try again later.
            LeverRejected: 404 when the opportunity is gone (deleted in Lever).
        """
        self._request(
            "POST", f"/opportunities/{_id(opportunity_id)}/removeTags", "opportunities.tags", json={"tags": tags}
        )

    def create_note(self, opportunity_id: str, value: str, *, perform_as: str) -> str | None:
        """Create a note on an opportunity as the user `perform_as`; returns the note's id when Lever's answer (its
        shape is undocumented) names it."""
        answer = self._request(
            "POST",
            f"/opportunities/{_id(opportunity_id)}/notes",
            "opportunities.notes",
            params={"perform_as": _id(perform_as)},
            json={"value": value},
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        found = (data.get("noteId") or data.get("id")) if isinstance(data, dict) else None
        return str(found) if found else None

    def list_notes(self, opportunity_id: str) -> list[dict[str, Any]]:
        """The notes of an opportunity (each with `text` and `user`), every page."""
        return [
            n
            for page in self._pages(f"/opportunities/{_id(opportunity_id)}/notes", "opportunities.notes", {})
            for n in page
        ]

    def list_users(self, **params: Any) -> list[dict[str, Any]]:
        """List users (filters `email`, `access_role`, `includeDeactivated`), every page."""
        return [u for page in self._pages("/users", "users.list", params) for u in page]


def _multipart_fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A Create-an-opportunity body as Lever's multipart form: arrays as `emails[]`, phones as `phones[0][value]`."""
    fields: list[tuple[str, str]] = []
    for name, value in body.items():
        if name == "phones":
            fields += [(f"phones[{i}][value]", str(p["value"])) for i, p in enumerate(value)]
        elif isinstance(value, list):
            fields += [(f"{name}[]", str(v)) for v in value]
        else:
            fields.append((name, str(value)))
    return fields


def _maybe_sent(error: requests.ConnectionError) -> bool:
    """False only when the connection was never made (refused, no route, DNS): then nothing reached Lever."""
    cause = error.args[0] if error.args else None
    return not isinstance(getattr(cause, "reason", cause), NewConnectionError)


def _id(value: str) -> str:
    """Refuse ids that would change the path (they come from URLs and stored data)."""
    if not value or not all(c.isalnum() or c in "-_" for c in value):
        raise LeverRejected(f"invalid Lever id {value!r}", status=None)
    return value
