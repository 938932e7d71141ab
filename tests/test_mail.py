"""The candidate's confirmation email, against a real SMTP server (aiosmtpd on a free port), real Redis and the
Lever sandbox: sent at once by the workers during Lever's maintenance, retried while the server defers it, sent at
most once, gone with the application's personal data, and never in a log."""

from __future__ import annotations

import email
import email.policy
import html
import re
from collections.abc import Iterator
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from rq import Queue
from rq.registry import ScheduledJobRegistry

from jobsite.delivery import jobs
from jobsite.notify import messages, received, sending
from jobsite.privacy import applications as retention
from jobsite.records import store
from jobsite.services import Services
from jobsite.settings import Settings, load_settings
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import (
    LiveServer,
    Sandbox,
    Workers,
    free_port,
    lever_body,
    simple_posting,
    smtp_server,
    wait_for,
    worker_env,
)

PUBLIC_URL = "https://careers.acme.test"
# This suite's Python may lack the CVE-2024-6923 fix (mail is then off unless allowed): the email's own defences
# are what these tests check, and test_mail_is_off_on_a_python_without_the_fix the refusal.
UNFIXED_PYTHON_ALLOWED = {"JOBSITE_MAIL_ON_UNFIXED_PYTHON": "1"}


class Inbox:
    """An aiosmtpd handler that keeps every message it takes. It can answer the first `defer` recipients with a
    451 that repeats the address (as greylisting servers do), refuse every recipient with a 550, or drop the
    connection once the message has arrived."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.defer = 0
        self.deferred = 0
        self.refuse = False
        self.drop_after_data = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.deferred < self.defer:
            self.deferred += 1
            return f"451 4.7.1 <{address}>: Recipient address rejected: Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.drop_after_data:
            server.transport.close()  # the message arrived; its answer never reaches the sender
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with smtp_server(handler) as port:
        yield handler, port


def mail_settings(settings: Settings, port: int, **env: str) -> Settings:
    """The test's settings with a mail server, read from the environment as a deployment would."""
    return load_settings(
        {
            "JOBSITE_SMTP_URL": f"smtp://127.0.0.1:{port}",
            "JOBSITE_PUBLIC_URL": PUBLIC_URL,
            **UNFIXED_PYTHON_ALLOWED,
            **env,
        },
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        lever_base_url=settings.lever_base_url,
        secret_key=settings.secret_key,
        lever_read_timeout_s=5.0,
        submissions_per_ip_per_hour=10_000,
    )


def apply(client: Any, sandbox: Sandbox, n: int = 0) -> str:
    posting = simple_posting(sandbox)
    answer = client.post(f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"], n))
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["receipt"]


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def test_without_a_mail_server_no_mail_job_is_queued(
    client, r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    assert settings.smtp is None
    apply(client, sandbox)
    assert Queue(jobs.MAIL_QUEUE, connection=r).count == 0
    # ...and with one, the same application queues exactly one, beside its delivery.
    mailing = create_app(mail_settings(settings, inbox[1])).test_client()
    apply(mailing, sandbox, 1)
    assert Queue(jobs.MAIL_QUEUE, connection=r).count == 1
    assert Queue(jobs.QUEUE, connection=r).count == 2


def test_the_email_says_what_was_received_and_what_comes_next(
    client, r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    s = mail_settings(settings, port, JOBSITE_COMPANY_NAME="Smith & <Sons>")
    posting = simple_posting(sandbox)
    sandbox.control(f"postings/{posting['id']}", text='R&D <Lead> "Robots"')
    mailing = create_app(s).test_client()
    receipt = apply(mailing, sandbox)

    assert received.send_confirmation(r, s, receipt) == sending.Status.SENT
    [message] = box.messages
    assert box.envelopes == [("no-reply@careers.acme.test", ["candidate0@example.com"])]
    assert str(message["To"]) == "candidate0@example.com"  # the address alone: no header holds what they typed
    assert message["From"].addresses[0].display_name == "Smith & <Sons>"
    assert message["Subject"] == 'We received your application for R&D <Lead> "Robots"'
    assert message["Auto-Submitted"] == "auto-generated"
    text, html = parts(message)
    url = f"{PUBLIC_URL}/applications/{receipt}"
    for part in (text, html):
        assert receipt in part
        assert url in part
        assert "What happens next" in part
        assert f"Your reference: {store.reference(receipt)}" in re.sub(r"<[^>]+>", "", part)  # to read out
        # No answers, no links the candidate gave, no files.
        assert "answer 0" not in part
        assert "linkedin.com" not in part
        assert "resume" not in part.lower()
    assert "Smith & <Sons>" in text
    assert 'R&D <Lead> "Robots"' in text
    assert "Smith &amp; &lt;Sons&gt;" in html
    assert "R&amp;D &lt;Lead&gt; &#34;Robots&#34;" in html  # Jinja escapes quotes as &#34; (html.escape: &quot;)
    assert "<Sons>" not in html
    assert "<Lead>" not in html
    # The link is the receipt page the site serves.
    page = client.get(url.removeprefix(PUBLIC_URL))
    assert page.status_code == 200
    assert store.reference(receipt) in page.get_data(as_text=True)


def test_an_email_is_sent_once_however_often_its_job_runs(
    client, r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    s = mail_settings(settings, port)
    receipt = apply(create_app(s).test_client(), sandbox)
    tasks.use(Services(s))
    assert tasks.send_confirmation_email(receipt) == "sent"
    assert tasks.send_confirmation_email(receipt) == "sent"  # a duplicate job: nothing more is sent
    assert received.send_confirmation(r, s, receipt) == sending.Status.SENT
    assert len(box.messages) == 1
    assert sending.state(r, receipt).status == sending.Status.SENT


def test_a_deferred_email_is_tried_again_with_backoff_and_the_last_try_records_failure(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    box.defer = 1000
    s = mail_settings(settings, port)
    receipt = apply(create_app(s).test_client(), sandbox)
    tasks.use(Services(s))
    assert tasks.send_confirmation_email(receipt) == "deferred"
    scheduled = ScheduledJobRegistry(jobs.MAIL_QUEUE, connection=r)
    [job_id] = scheduled.get_job_ids()
    job = Queue(jobs.MAIL_QUEUE, connection=r).fetch_job(job_id)
    assert job.args == (receipt, 1)  # the next try, and nothing personal in the job
    assert sending.state(r, receipt) is None  # nothing claimed: the next try may send it
    assert tasks.send_confirmation_email(receipt, tasks.MAIL_TRIES - 1) == "failed"
    assert sending.state(r, receipt).status == sending.Status.FAILED
    assert scheduled.get_job_ids() == [job_id]  # the last try schedules nothing more
    assert box.messages == []
    assert box.deferred == 2


def test_a_refused_address_is_not_retried(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    box.refuse = True
    s = mail_settings(settings, port)
    receipt = apply(create_app(s).test_client(), sandbox)
    tasks.use(Services(s))
    assert tasks.send_confirmation_email(receipt) == "refused"
    assert ScheduledJobRegistry(jobs.MAIL_QUEUE, connection=r).count == 0
    assert sending.state(r, receipt).status == sending.Status.REFUSED


def test_a_connection_lost_while_the_server_takes_it_is_not_sent_again(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    box.drop_after_data = True
    s = mail_settings(settings, port)
    receipt = apply(create_app(s).test_client(), sandbox)
    assert received.send_confirmation(r, s, receipt, last_try=False) == sending.Status.UNKNOWN
    box.drop_after_data = False
    assert received.send_confirmation(r, s, receipt) == sending.Status.UNKNOWN
    assert len(box.messages) == 1


def test_an_unreachable_mail_server_defers_and_names_no_one(
    r: redis.Redis, settings: Settings, sandbox: Sandbox
) -> None:
    s = mail_settings(settings, free_port())  # nothing listens there
    receipt = apply(create_app(s).test_client(), sandbox)
    with pytest.raises(sending.MailDeferred) as e:
        received.send_confirmation(r, s, receipt, last_try=False)
    assert "could not reach the mail server" in str(e.value)
    assert "candidate0" not in str(e.value)
    assert sending.state(r, receipt) is None


def test_purging_personal_data_leaves_nothing_of_the_email(
    client, r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    from jobsite.delivery import deliverer

    box, port = inbox
    s = mail_settings(settings, port)
    svc = tasks.use(Services(s))
    receipt = apply(create_app(s).test_client(), sandbox)
    assert tasks.send_confirmation_email(receipt) == "sent"
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    assert sending.state(r, receipt) is not None
    later = store.load(r, receipt).delivered_at + s.retention_days * 86400 + 60
    assert retention.purge(svc.redis, svc.settings.retention_days, now=later) == 1
    assert sending.state(r, receipt) is None
    everything = redis_dump(r)
    assert "candidate0@example.com" not in everything
    assert "Candidate 0" not in everything
    # A job that still comes finds nothing to send.
    assert tasks.send_confirmation_email(receipt) == "nothing to send"
    assert len(box.messages) == 1


def redis_dump(r: redis.Redis) -> str:
    """Every key and value in Redis, as text."""
    out = []
    for key in r.scan_iter():
        kind = r.type(key).decode()
        value = {
            "string": r.get,
            "hash": r.hgetall,
            "list": lambda k: r.lrange(k, 0, -1),
            "set": r.smembers,
            "zset": lambda k: r.zrange(k, 0, -1),
        }[kind](key)
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


@pytest.mark.slow
def test_the_workers_send_it_at_once_during_maintenance_before_any_delivery(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, workers: Workers, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    box, port = inbox
    s = mail_settings(settings, port)
    sandbox.control("maintenance", on=True)
    live = LiveServer(create_app(s))
    log = tmp_path / "worker.log"
    try:
        workers.start(
            worker_env(
                s,
                JOBSITE_SMTP_URL=f"smtp://127.0.0.1:{port}",
                JOBSITE_PUBLIC_URL=PUBLIC_URL,
                **UNFIXED_PYTHON_ALLOWED,
                JOBSITE_LOG_LEVEL="INFO",
            ),
            log=log,
        )
        posting = simple_posting(sandbox)
        answer = requests.post(
            f"{live.url}/api/v1/postings/{posting['id']}/applications",
            json=lever_body(sandbox, posting["id"]),
            timeout=30,
        )
        assert answer.status_code == 202
        receipt = answer.json()["receipt"]

        wait_for(lambda: box.messages, what="the confirmation email")
        assert sandbox.received()["applications"] == []  # Lever has nothing yet: it is in maintenance
        assert receipt in parts(box.messages[0])[0]
        wait_for(lambda: store.load(r, receipt).state == store.State.WAITING, what="the delivery to wait for Lever")

        sandbox.control("maintenance", on=False)
        wait_for(lambda: store.load(r, receipt).state == store.State.DELIVERED, what="the delivery")
        [lever_application] = sandbox.received()["applications"]
        assert lever_application["sendConfirmationEmail"] is False  # Lever's own email stays off by default
        assert len(box.messages) == 1
        assert sending.state(r, receipt).status == sending.Status.SENT
    finally:
        live.stop()
    logged = log.read_text()
    assert "confirmation email" in logged
    assert receipt[:8] in logged
    assert "candidate0@example.com" not in logged
    assert "Candidate 0" not in logged


@pytest.mark.slow
def test_a_mail_server_that_defers_at_first_gets_it_once_on_a_retry(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, workers: Workers, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    box, port = inbox
    box.defer = 1
    s = mail_settings(settings, port)
    receipt = apply(create_app(s).test_client(), sandbox)
    log = tmp_path / "worker.log"
    workers.start(
        worker_env(
            s,
            JOBSITE_SMTP_URL=f"smtp://127.0.0.1:{port}",
            JOBSITE_PUBLIC_URL=PUBLIC_URL,
            **UNFIXED_PYTHON_ALLOWED,
            JOBSITE_LOG_LEVEL="INFO",
        ),
        log=log,
    )
    wait_for(lambda: box.messages, what="the email, on its second try")
    wait_for(
        lambda: sending.state(r, receipt) and sending.state(r, receipt).status == sending.Status.SENT,
        what="the email to be recorded as sent",
    )
    wait_for(lambda: store.load(r, receipt).state == store.State.DELIVERED, what="the delivery")
    mail_queue = Queue(jobs.MAIL_QUEUE, connection=r)
    assert mail_queue.count == 0
    assert ScheduledJobRegistry(jobs.MAIL_QUEUE, connection=r).count == 0
    assert box.deferred == 1
    assert len(box.messages) == 1
    logged = log.read_text()
    assert "tried again later" in logged
    assert "Greylisted" in logged
    assert "candidate0@example.com" not in logged  # ...with the address it repeated blanked


def test_levers_own_confirmation_is_a_setting_the_sandbox_sees(
    r: redis.Redis, settings: Settings, sandbox: Sandbox
) -> None:
    from dataclasses import replace

    from jobsite.delivery import deliverer

    assert settings.lever_confirmation_email is False
    for n, on in enumerate((False, True)):
        s = replace(settings, lever_confirmation_email=on)
        receipt = apply(create_app(s).test_client(), sandbox, n)
        assert deliverer.deliver(tasks.use(Services(s)).delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    assert [a["sendConfirmationEmail"] for a in sandbox.received()["applications"]] == [False, True]


def test_the_console_says_whether_the_email_was_sent(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    from jobsite.console import accounts

    from .helpers import ADMIN, sign_in

    s = mail_settings(settings, inbox[1])
    console = create_app(s).test_client()
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(console, *ADMIN)
    receipt = apply(console, sandbox)

    def shown() -> str:
        page = console.get(f"/admin/applications/{receipt}").get_data(as_text=True)
        return re.search(r'<dd id="confirmation-email">(.*?)</dd>', page).group(1)

    assert shown() == "not sent yet"
    received.send_confirmation(r, s, receipt)
    assert re.fullmatch(r'Sent <time datetime="[0-9T:-]+Z">.+</time>', shown())
    # Without a mail server, and no email ever sent, the console does not speak of one.
    quiet = create_app(settings).test_client()
    sign_in(quiet, *ADMIN)
    page = quiet.get(f"/admin/applications/{apply(quiet, sandbox, 1)}").get_data(as_text=True)
    assert "Confirmation email" not in page


def test_line_breaks_in_a_title_or_a_name_cannot_add_headers(settings: Settings) -> None:
    from jobsite.records.application import Application
    from jobsite.records.store import Record, State

    s = mail_settings(settings, 25, JOBSITE_COMPANY_NAME="Müller & Söhne")
    record = Record(
        receipt="r1",
        posting_id="p",
        state=State.QUEUED,
        created_at=0.0,
        posting_title="Lead\r\nBcc: x@y",
        application=Application("p", personal={"fullName": "Zoë\nBcc: a@b", "email": "zoe@example.com"}),
    )
    message = email.message_from_bytes(received.compose(s, record).as_bytes(), policy=email.policy.default)
    assert message["Bcc"] is None
    assert message["Subject"] == "We received your application for Lead Bcc: x@y"
    assert str(message["To"]) == "zoe@example.com"
    assert "Hello Zoë," in parts(message)[0]
    assert message["From"].addresses[0].display_name == "Müller & Söhne"


def test_the_email_speaks_the_language_the_candidate_saw_the_site_in(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    s = mail_settings(settings, port)
    posting = simple_posting(sandbox)
    answer = (
        create_app(s)
        .test_client()
        .post(f"/api/v1/postings/{posting['id']}/applications?lang=de", json=lever_body(sandbox, posting["id"]))
    )
    receipt = answer.get_json()["receipt"]
    assert store.load(r, receipt).language == "de"
    assert received.send_confirmation(r, s, receipt) == sending.Status.SENT
    [message] = box.messages
    assert message["Subject"] == f"Wir haben Ihre Bewerbung für {posting['text']} erhalten"
    text, html = parts(message)
    for part in (text, html):
        assert "Wie es weitergeht" in part
        assert "Verfolgen Sie Ihre Bewerbung" in part
        assert receipt in part
        assert "What happens next" not in part


ENCODED_WORD_NAME = (
    "Eve =?utf-8?q?=0D=0AReply-To:_attacker@evil.example=0D=0AX-Injected:_yes=0D=0A=0D=0AYour_account_is_locked...?="
)


def test_a_name_that_is_an_encoded_word_adds_no_header_and_no_text(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    """Issue 21, item 1: the name decoded by the email package into CR/LF gave the sent message the attacker's
    Reply-To, headers and body; now no header holds what the candidate typed, and the body only a first name."""
    box, port = inbox
    s = mail_settings(settings, port)
    client = create_app(s).test_client()
    posting = simple_posting(sandbox)
    body = lever_body(sandbox, posting["id"])
    body["personalInformation"][0]["value"] = ENCODED_WORD_NAME
    receipt = client.post(f"/api/v1/postings/{posting['id']}/applications", json=body).get_json()["receipt"]
    body["personalInformation"] = [
        {"name": "fullName", "value": "Mallory Visit https://evil.example to unlock"},
        {"name": "email", "value": "victim@example.com"},
    ]
    other = client.post(f"/api/v1/postings/{posting['id']}/applications", json=body).get_json()["receipt"]
    assert received.send_confirmation(r, s, receipt) == received.send_confirmation(r, s, other) == sending.Status.SENT
    for message in box.messages:
        assert sorted(message.keys()) == [
            "Auto-Submitted",
            "Content-Type",
            "Date",
            "From",
            "MIME-Version",
            "Message-ID",
            "Subject",
            "To",
        ]
        assert message["Reply-To"] is None
        assert message["X-Injected"] is None
        assert str(message["To"]) in ("candidate0@example.com", "victim@example.com")
        for part in parts(message):
            assert "locked" not in part
            assert "evil.example" not in part
            assert "unlock" not in part
    assert "Hello Eve," in parts(box.messages[0])[0]
    assert "Hello Mallory," in parts(box.messages[1])[0]

    # Were a header to hold the name, an unfixed Python's injection is still caught as the message is written (a
    # fixed one writes it encoded, harmless): it is not sent.
    forged = EmailMessage()
    forged["To"] = Address(display_name=ENCODED_WORD_NAME, addr_spec="eve@example.com")
    forged.set_content("x")
    if hasattr(email.policy.default, "verify_generated_headers"):
        messages.check_headers(forged)
    else:
        with pytest.raises(ValueError, match="headers"):
            messages.check_headers(forged)


def test_mail_is_off_on_a_python_without_the_fix(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Issue 21, item 1: on a Python without the CVE-2024-6923 fix no email is sent (start-up says why) and
    applications are taken as before; with the fix, nothing changes."""
    import subprocess
    import sys

    fixed = hasattr(email.policy.default, "verify_generated_headers")
    env = {"JOBSITE_SMTP_URL": "smtp://127.0.0.1:25", "JOBSITE_PUBLIC_URL": PUBLIC_URL}
    s = load_settings(
        env,
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        lever_base_url=settings.lever_base_url,
        secret_key=settings.secret_key,
    )
    assert (s.smtp is not None) == fixed
    assert ("CVE-2024-6923" in s.mail_off) == (not fixed)
    apply(create_app(s).test_client(), sandbox)
    assert Queue(jobs.MAIL_QUEUE, connection=r).count == (1 if fixed else 0)
    started = subprocess.run(
        [sys.executable, "-m", "jobsite", "worker", "--burst"],
        env=worker_env(s, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0
    assert ("CVE-2024-6923" in started.stderr) == (not fixed)


def test_mail_off_is_said_on_the_dashboard_in_readyz_and_in_a_metric(r: redis.Redis, settings: Settings) -> None:
    """Issue 28, item 6: mail off (this Python lacks the CVE-2024-6923 fix, or no JOBSITE_SMTP_URL) was one start-up
    line on stderr: nothing in the console, /readyz or the metrics, while candidates got no reference nor link."""
    from jobsite.console import accounts

    from .helpers import ADMIN, sign_in

    fixed = hasattr(email.policy.default, "verify_generated_headers")
    base = {
        "data_dir": settings.data_dir,
        "redis_url": settings.redis_url,
        "secret_key": settings.secret_key,
        "lever_base_url": settings.lever_base_url,
    }
    smtp = {"JOBSITE_SMTP_URL": "smtp://127.0.0.1:25", "JOBSITE_PUBLIC_URL": PUBLIC_URL}
    cases = [
        ({}, "not_configured", "JOBSITE_SMTP_URL is not set"),
        (smtp, "" if fixed else "unfixed_python", "are on" if fixed else "CVE-2024-6923"),
        ({**smtp, **UNFIXED_PYTHON_ALLOWED}, "", "are on"),
    ]
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    for env, reason, words in cases:
        client = create_app(load_settings(env, **base)).test_client()
        ready = client.get("/readyz").get_json()["mail"]
        assert ready["status"] == ("off" if reason else "on")
        assert ready["reason"] == (reason or None)
        assert words in ready["says"]
        scraped = client.get("/metrics").get_data(as_text=True)
        for known in messages.REASONS:
            assert f'jobsite_confirmation_email_off{{reason="{known}"}} {float(known == reason)}' in scraped
        sign_in(client, *ADMIN)
        card = client.get("/admin/").get_data(as_text=True).split('id="mail"', 1)[1].split("</section>", 1)[0]
        assert ("off" if reason else "on") in card
        assert html.escape(words) in card
