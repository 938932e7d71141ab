"""Pages for candidates: job list, posting, application form, confirmation, plus the sitemap."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import redis
from babel import numbers
from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale, gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from ..admission import limits
from ..alerts import subscriptions
from ..intake.forms import CONSENT, Form, ValidationFailed
from ..notify import links, messages, sending
from ..postings import board, feed, seo
from ..postings.catalog import PostingNotFound, Snapshot
from ..postings.posting import Posting
from ..records import spool, store
from ..services import get_services
from ..sourcing import enrol as sourced
from ..sourcing import optin, people
from ..words import N_
from . import alerting, brand, embed, sourcing, submission
from .i18n import language, say
from .pages import PageCache

bp = Blueprint("candidates", __name__)


def pages() -> PageCache:
    """This app's rendered pages: per app, as what they show depends on its settings (embed origins, brand)."""
    found: PageCache = current_app.extensions.setdefault("jobsite.pages", PageCache())
    return found


FORM_TOKEN_MAX_AGE_S = 2 * 86400
FORM_REUSED = N_(
    "This form was already used to send an application with other answers, so nothing was sent. Your "
    "answers are still here: to send them as a new application, attach your files again and submit."
)
NOT_OPEN = N_("This job is not open (any more). Have a look at our other openings.")
# The receipt page's words for each status (store.State values): plain, reassuring, never the vendor's name. The page
# carries them all, so its script can follow the status API without a reload. `step` marks progress: 1 received,
# 2 with the hiring team. Said in the candidate's language when the page is rendered.
UNKNOWN = "unknown"  # the status while Redis, where statuses are, cannot be reached (none of State's words)
STATUS_WORDS: dict[str, dict[str, Any]] = {
    "queued": {"step": 1, "text": N_("Received — we'll pass it to the hiring team shortly.")},
    "delivering": {"step": 1, "text": N_("Received — we're passing it to the hiring team now.")},
    "waiting": {
        "step": 1,
        "text": N_(
            "Received and safe with us. Our hiring system is busy for a moment; we'll pass your "
            "application on automatically. You don't need to do anything."
        ),
    },
    "delivered": {"step": 2, "text": N_("With the hiring team — they'll read it and get in touch with you.")},
    "needs_attention": {
        "step": 1,
        "text": N_(
            "Received — we're checking a detail before it reaches the hiring team. You don't "
            "need to do anything; we'll contact you if we need more from you."
        ),
    },
    "discarded": {
        "step": 1,
        "text": N_(
            "This application is closed and won't be considered. If you think that's a mistake, "
            "please apply again or contact us."
        ),
    },
    UNKNOWN: {
        "step": 1,
        "text": N_(
            "Our records are briefly unreachable, so we can't tell where your application is right now. "
            "If you were sent here after applying, we received it. This page will update by itself."
        ),
    },
}
FINAL_STATUSES = ("delivered", "discarded")


@bp.app_template_filter("isotime")
def isotime(ts: float | None) -> str:
    """A timestamp for <time datetime>: ISO 8601 in UTC, which scripts turn into the reader's own time zone."""
    return datetime.fromtimestamp(ts or 0, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.app_template_filter("longdate")
def longdate(ts: float | None) -> str:
    """A date for people, in UTC, as the candidate's language writes it: November 24, 2026; 24. November 2026."""
    return format_date(datetime.fromtimestamp(ts or 0, UTC), "long")


# Salary ranges: Lever's interval names -> how the amount is said per interval.
SALARY_INTERVALS = {
    "per-year-salary": N_("%(amount)s per year"),
    "per-month-salary": N_("%(amount)s per month"),
    "per-week-salary": N_("%(amount)s per week"),
    "per-day-wage": N_("%(amount)s per day"),
    "per-hour-wage": N_("%(amount)s per hour"),
    "one-time": N_("%(amount)s one-time"),
}


@bp.app_template_filter("salary")
def salary(range_: dict[str, Any]) -> str:
    """A salary range in the candidate's language and number format: $120,000–$150,000 per year;
    120.000 € – 150.000 € pro Jahr. Whole amounts are shown without cents."""
    locale = get_locale()
    currency = range_.get("currency") or "USD"
    low, high = range_.get("min"), range_.get("max")
    pattern = numbers.parse_pattern(locale.currency_formats["standard"].pattern)  # a copy: the locale's is shared
    if all(v is None or float(v).is_integer() for v in (low, high)):
        pattern.frac_prec = (0, 0)

    def money(value: float) -> str:
        return pattern.apply(value, locale, currency=currency, currency_digits=False)

    if low is not None and high is not None:
        amount = gettext("%(low)s–%(high)s", low=money(low), high=money(high))
    elif low is not None:
        amount = gettext("from %(low)s", low=money(low))
    elif high is not None:
        amount = gettext("up to %(high)s", high=money(high))
    else:
        return ""
    said = SALARY_INTERVALS.get(range_.get("interval") or "")
    return gettext(said, amount=amount) if said else amount


def site_url() -> str:
    return (get_services().settings.public_url or request.url_root).rstrip("/")


def absolute(endpoint: str, **values: Any) -> str:
    """The page's address for search engines and API clients: without the parameters an embedded page carries."""
    return site_url() + url_for(endpoint, **{**dict.fromkeys(embed.CARRIED), **values})


def host_key() -> str:
    """What makes absolute URLs differ between requests (cheaper than building them), and the brand's version: part
    of page cache keys."""
    env = request.environ
    host = get_services().settings.public_url or f"{env.get('wsgi.url_scheme')}://{env.get('HTTP_HOST', '')}"
    return f"{host} {brand.version()}"


def embedded() -> bool:
    return request.args.get("embed") == "1"


def _posting_or_404(snap: Snapshot, posting_id: str) -> Posting:
    try:
        return snap.find(posting_id)
    except PostingNotFound:
        abort(404, say(NOT_OPEN))


@bp.get("/")
def jobs() -> Response:
    snap = get_services().catalog.postings()

    def render() -> str:
        query = board.Query.from_args(request.args)
        found = board.search(snap.data, query)
        return render_template(
            "candidates/jobs.html",
            groups=board.by_team(found),
            count=len(found),
            total=len(snap.data),
            facets=board.facets(snap.data),
            query=query,
            labels=say(board.WORKPLACE_LABELS),
            embedded=embedded(),
            canonical=absolute("candidates.jobs"),
        )

    referred = embed.referred_from()
    return pages().respond(
        ("jobs", snap.version, request.query_string.decode("latin-1"), host_key(), language(), referred),
        render,
        private=bool(referred),
    )


@bp.get("/jobs/<posting_id>")
def posting(posting_id: str) -> Response:
    snap = get_services().catalog.postings()
    p = _posting_or_404(snap, posting_id)

    def render() -> str:
        canonical = absolute("candidates.posting", posting_id=posting_id)
        ld = seo.job_posting(p, company=get_services().settings.company_name, url=canonical, site_url=site_url())
        subject = gettext("%(title)s at %(company)s", title=p["text"], company=get_services().settings.company_name)
        return render_template(
            "candidates/posting.html",
            p=p,
            jsonld=ld,
            canonical=canonical,
            share_subject=subject,
            labels=say(board.WORKPLACE_LABELS),
            embedded=embedded(),
        )

    referred = embed.referred_from()
    return pages().respond(
        ("posting", snap.version, posting_id, request.query_string.decode("latin-1"), host_key(), language(), referred),
        render,
        private=bool(referred),
    )


def form_tokens() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="apply-form")


def new_form_token(posting_id: str) -> str:
    """A signed token in every rendered form: proves the form came from us and keys the submission's idempotency."""
    return form_tokens().dumps({"p": posting_id, "n": secrets.token_urlsafe(12)})


def read_form_token(token: str, posting_id: str) -> str | None:
    """The token's nonce if it is ours, recent and for this posting."""
    try:
        data = form_tokens().loads(token, max_age=FORM_TOKEN_MAX_AGE_S)
    except BadSignature:
        return None
    return data.get("n") if isinstance(data, dict) and data.get("p") == posting_id else None


def render_form(
    p: Posting,
    form: Form,
    *,
    answers: Any = None,
    errors: dict[str, str] | None = None,
    token: str | None = None,
    status: int = 200,
    message: str | None = None,
) -> Response:
    html = render_template(
        "candidates/apply.html",
        p=p,
        form=form,
        answers=answers or {},
        errors=errors or {},
        consent_title=CONSENT,
        token=token or new_form_token(p["id"]),
        embedded=embedded(),
        message=message,
        canonical=absolute("candidates.apply", posting_id=p["id"]),
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/jobs/<posting_id>/apply")
def apply(posting_id: str) -> Response:
    return render_form(*_form_or_404(posting_id))


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    snap = get_services().catalog.postings()
    xml = render_template("candidates/sitemap.xml", postings=snap.data, site=site_url(), iso_date=seo.iso_date)
    response = Response(xml, mimetype="application/xml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/jobs.atom")
def jobs_feed() -> Response:
    """An Atom feed of open postings, honouring the job list's filters (team, department, location, commitment,
    workplace, q), each entry linking to the posting."""
    svc = get_services()
    snap = svc.catalog.postings()
    query = board.Query.from_args(request.args)
    asked = query.asked()
    site = site_url()
    feed_url = f"{site}/jobs.atom" + (f"?{urlencode(asked)}" if asked else "")
    company = svc.settings.company_name
    title = gettext("Jobs at %(company)s", company=company)
    xml = feed.atom(
        board.search(snap.data, query),
        title=title,
        company=company,
        feed_url=feed_url,
        site_url=f"{site}/" + (f"?{urlencode(asked)}" if asked else ""),
        posting_url=f"{site}/jobs/{{id}}",
        language=language(),
    )
    response = Response(xml, mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/robots.txt")
def robots() -> Response:
    return Response(
        f"User-agent: *\nDisallow: /admin/\nDisallow: /api/\nSitemap: {site_url()}/sitemap.xml\n", mimetype="text/plain"
    )


@bp.post("/jobs/<posting_id>/apply")
def submit(posting_id: str) -> BaseResponse:
    posting, form = _form_or_404(posting_id)
    max_bytes = get_services().settings.max_file_mb * 2**20
    answers = submission.answers_from(request.form, form)
    token = request.form.get("form_token", "")
    nonce = read_form_token(token, posting_id)
    if nonce is None:
        return render_form(
            posting,
            form,
            answers=answers,
            status=400,
            message=gettext(
                "This form had expired, so nothing was sent. Your answers are still "
                "here: please attach your files again and submit."
            ),
        )
    try:
        receipt = submission.receive(
            posting,
            form,
            answers,
            submission.uploads_from(request.files, form, max_bytes),
            idempotency_key=f"form:{nonce}",
            honeypot=request.form.get("website", ""),
            attribution=embed.attribution(),
        )
    except ValidationFailed as e:
        return render_form(
            posting,
            form,
            answers=answers,
            errors=say(e.errors),
            token=token,
            status=422,
            message=gettext("Your answers are kept, but files are not: please attach them again.")
            if _attached()
            else None,
        )
    except submission.KeyReused:  # sent before with other answers (the back button): a new form keeps them
        return render_form(posting, form, answers=answers, status=422, message=say(FORM_REUSED))
    except submission.Rejected as e:
        message = e.message + (" Please attach your files again." if _attached() else "")
        response = render_form(posting, form, answers=answers, token=token, status=e.status, message=message)
        response.headers.update(e.headers)
        return response
    if request.form.get("alerts") and alerting.offered():  # "tell me about similar jobs", unticked by default
        alerting.ask_quietly(str(answers.get("email") or ""), [alerting.similar(posting)], "weekly")
    return redirect(url_for("candidates.confirmation", receipt=receipt.receipt, embed=1 if embedded() else None), 303)


def _attached() -> bool:
    """Whether the candidate sent files, which a re-rendered form cannot keep."""
    return any(f.filename for f in request.files.values())


def _form_or_404(posting_id: str) -> tuple[Posting, Form]:
    try:
        return submission.form_for(posting_id)
    except PostingNotFound:
        abort(404, say(NOT_OPEN))


@bp.get("/applications/<receipt>")
def confirmation(receipt: str) -> Response:
    status = application_status(receipt)
    if status is None:
        abort(404, gettext("We could not find an application with this receipt."))
    status["reference"] = store.reference(status["receipt"])
    response = Response(
        render_template(
            "candidates/confirmation.html",
            status=status,
            embedded=embedded(),
            words=say(STATUS_WORDS),
            final=FINAL_STATUSES,
            status_url=url_for("api.application", receipt=receipt),
            receipt_url=absolute("candidates.confirmation", receipt=receipt),
            mail=_mail_said(receipt),
        )
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _mail_said(receipt: str) -> str:
    """What the receipt page says of the confirmation email: "off" (this site sends none), "sent", "failed",
    "coming" (queued or being sent), or "" when Redis cannot say: a person trying the site saw no email and no
    word of why."""
    svc = get_services()
    if not messages.switch(svc.settings).on:
        return "off"
    try:
        found = sending.state(svc.request_redis(), receipt)
    except redis.RedisError:
        return ""
    if found is None or found.status == sending.Status.SENDING:
        return "coming"
    return "sent" if found.status in (sending.Status.SENT, sending.Status.UNKNOWN) else "failed"


def application_status(receipt: str) -> dict[str, Any] | None:
    """An application's public status (no personal data), from Redis, else from this machine's spool (waiting for
    Redis); while Redis is down, any other well-formed receipt reads as "unknown": it may be in the spool of another
    web machine (the redirect after a submission can land on any of them), and a candidate whose application was
    accepted must never read "not found", nor a state we cannot know ("waiting" for one long delivered). Read with
    a request's quick client: a silent Redis costs the page seconds, not minutes."""
    svc = get_services()
    if not receipt or len(receipt) > 64 or not receipt.replace("-", "").replace("_", "").isalnum():
        return None
    try:
        record = store.load_answering(svc.request_redis(), receipt)
    except redis.RedisError as e:
        svc.silence.heard(e)
        record, unreachable = None, True
    else:
        unreachable = False
    if record is not None:
        data = record.public()
        data.update(receipt=receipt, posting_title=record.posting_title)  # a retry's receipt stays its own
        return data
    spooled = spool.find(svc.settings.data_dir, receipt)
    if spooled is not None:  # waiting for Redis, on this machine
        return {
            "receipt": receipt,
            "status": store.State.WAITING.public,
            "posting": spooled.posting_id,
            "posting_title": spooled.posting_title,
            "received_at": int(spooled.created_at),
            "delivered_at": None,
        }
    if unreachable:
        return {
            "receipt": receipt,
            "status": UNKNOWN,
            "posting": None,
            "posting_title": "",
            "received_at": None,
            "delivered_at": None,
        }
    return None


# The talent community (sourcing): people who don't see the right job today leave their details and interests.


def _render_talent(
    *,
    answers: Any = None,
    errors: dict[str, str] | None = None,
    token: str | None = None,
    status: int = 200,
    message: str | None = None,
) -> Response:
    teams, locations = sourcing.interests()
    html = render_template(
        "candidates/talent.html",
        teams=teams,
        locations=locations,
        answers=answers or {},
        errors=errors or {},
        token=token or new_form_token("talent"),
        message=message,
        embedded=embedded(),
        canonical=absolute("candidates.talent"),
        retention_days=get_services().settings.retention_days,
        resume_lost=request.method == "POST" and _attached(),
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.context_processor
def talent_community() -> dict[str, Any]:
    """Whether candidate pages link to the talent community (JOBSITE_SOURCING)."""
    return {"talent_community": get_services().settings.sourcing}


@bp.get("/talent")
def talent() -> Response:
    sourcing.enabled()
    return _render_talent()


@bp.post("/talent")
def join_talent() -> BaseResponse:
    sourcing.enabled()
    f = request.form
    answers = {
        "name": f.get("name", ""),
        "email": f.get("email", ""),
        "phone": f.get("phone", ""),
        "links": f.get("links", ""),
        "teams": f.getlist("teams"),
        "locations": f.getlist("locations"),
        "consent": f.get("consent"),
        "alerts": f.get("alerts"),
    }
    token = f.get("form_token", "")
    nonce = read_form_token(token, "talent")
    if nonce is None:
        return _render_talent(
            answers=answers,
            status=400,
            message=gettext(
                "This form had expired, so nothing was sent. Your answers are still here: please submit again."
            ),
        )
    try:
        joined = sourcing.join(
            answers,
            sourcing.resume_from(request.files.get("resume")),
            idempotency_key=f"form:{nonce}",
            attribution=embed.attribution(),
            honeypot=f.get("website", ""),
        )
    except sourced.Invalid as e:
        return _render_talent(answers=answers, errors=say(e.errors), token=token, status=422)
    except submission.KeyReused:
        return _render_talent(answers=answers, status=422, message=say(FORM_REUSED))
    except submission.Rejected as e:
        response = _render_talent(answers=answers, token=token, status=e.status, message=e.message)
        response.headers.update(e.headers)
        return response
    if f.get("alerts"):  # job alerts for the interests, confirmed with the sign-up's own opt-in
        alerting.with_sign_up(joined.person, new=joined.new)
    summary = redirect(url_for("candidates.talent_joined", embed=1 if embedded() else None), 303)
    # The summary page's, for this browser only (candidate pages have no session; the address bar shows nothing).
    # A confirmed member's record is shown to no one who merely typed its address ("" says: already a member).
    shown = joined.person.id if joined.new or joined.person.unconfirmed else ""
    summary.set_cookie(
        JOINED_COOKIE,
        _joined_tokens().dumps(shown),
        max_age=JOINED_MAX_AGE_S,
        path=f"{request.script_root}/talent/joined",
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return summary


JOINED_COOKIE, JOINED_MAX_AGE_S = "jobsite_joined", 3600


def _joined_tokens() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="talent-joined")


def _joined_id() -> str | None:
    try:
        found = _joined_tokens().loads(request.cookies.get(JOINED_COOKIE, ""), max_age=JOINED_MAX_AGE_S)
    except BadSignature:
        return None
    return found if isinstance(found, str) else None


@bp.get("/talent/joined")
def talent_joined() -> Response:
    """What was saved, what happens next and how to change it, for the browser that joined (a signed cookie names
    the sign-up for an hour)."""
    sourcing.enabled()
    svc = get_services()
    person_id = _joined_id()
    person = people.load(svc.redis, person_id) if person_id else None
    response = Response(
        render_template(
            "candidates/talent_joined.html",
            embedded=embedded(),
            person=person,
            member=person_id == "",
            days=optin.EXPIRE_DAYS,
            retention_days=svc.settings.retention_days,
        ),
        mimetype="text/html",
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/talent/confirm/<person_id>/<signed>", methods=["GET", "POST"])
def talent_confirm(person_id: str, signed: str) -> Response:
    """The opt-in email's link: a page with one button (GET, which mail scanners open, changes nothing); the
    button's POST confirms the address and sends the sign-up on to the recruiters."""
    sourcing.enabled()
    svc = get_services()
    person = people.load(svc.redis, person_id) if optin.signed(svc.settings, person_id, signed) else None
    if person is None or person.purged:
        abort(
            404,
            gettext(
                "This link is not valid any more: the sign-up was removed or never confirmed in time. "
                "You can join again."
            ),
        )
    alerts: list[subscriptions.Subscription] = []
    if request.method == "POST":
        person = optin.confirm(svc.delivery, person_id, signed) or person
        alerts = subscriptions.confirm_along(svc.redis, person_id)  # the job alerts asked for with the sign-up
    return signed_page(
        render_template(
            "candidates/talent_confirm.html",
            embedded=False,
            person=person,
            alerts=[(a, links.token(svc.settings, a.id, "alert-manage")) for a in alerts],
            retention_days=svc.settings.retention_days,
            manage=url_for(
                "candidates.talent_manage", person_id=person.id, signed=optin.token(svc.settings, person.id, "manage")
            ),
        )
    )


@bp.route("/talent/manage/<person_id>/<signed>", methods=["GET", "POST"])
def talent_manage(person_id: str, signed: str) -> Response:
    """The link at the end of every email to a member: change interests and locations, unsubscribe, or leave (the
    site's copy removed). Each change is a POST of the page's form; the GET changes nothing."""
    sourcing.enabled()
    svc = get_services()
    ok = optin.signed(svc.settings, person_id, signed, "manage")
    person = people.load(svc.redis, person_id) if ok else None
    if person is None or person.purged or person.withdrawn or people.wished(svc.redis, person_id).get("withdrawn"):
        return signed_page(
            render_template(
                "candidates/talent_manage.html", embedded=False, person=None, teams=[], locations=[], saved=""
            )
        )
    teams, locations = sourcing.interests()
    saved = ""
    status, member, retry_after = 200, person, 0
    if request.method == "POST":
        action = request.form.get("action", "")
        if action in ("leave", "unsubscribe") and person.email:  # "we will not email you again": alerts neither
            subscriptions.stop_address(svc.redis, person.email)
        try:
            if action == "leave":
                optin.leave(svc.delivery, person)
                return signed_page(
                    render_template(
                        "candidates/talent_manage.html",
                        embedded=False,
                        person=None,
                        teams=[],
                        locations=[],
                        saved="left",
                    )
                )
            limits.check_changes(svc.admission, person.id)  # (leaving, above, is never refused)
            if action == "unsubscribe":
                person = optin.change(svc.delivery, person.id, unsubscribed=True)
                saved = "unsubscribed"
            else:
                chosen = [t for t in request.form.getlist("teams") if t in set(teams) | set(person.teams)]
                where = [p for p in request.form.getlist("locations") if p in set(locations) | set(person.locations)]
                person = optin.change(svc.delivery, person.id, teams=chosen, locations=where)
                saved = "saved"
        except limits.TooManyChanges as e:
            person, saved, status = people.as_wished(member, people.wished(svc.redis, member.id)), "busy", 429
            retry_after = e.retry_after_s
        if person is None or person.withdrawn:
            return signed_page(
                render_template(
                    "candidates/talent_manage.html", embedded=False, person=None, teams=[], locations=[], saved=""
                )
            )
    else:
        person = people.as_wished(person, people.wished(svc.redis, person.id))
    page = signed_page(
        render_template(
            "candidates/talent_manage.html",
            embedded=False,
            person=person,
            teams=sorted(set(teams) | set(person.teams)),
            locations=sorted(set(locations) | set(person.locations)),
            saved=saved,
            retention_days=svc.settings.retention_days,
        )
    )
    page.status_code = status
    if retry_after:
        page.headers["Retry-After"] = str(retry_after)
    return page


def signed_page(html: str) -> Response:
    """A page whose address is a signed link: kept out of caches and of other sites' Referer."""
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
