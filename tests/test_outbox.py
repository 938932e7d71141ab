"""Issue 29, item 5: mail you can see out of the box. With the sandbox and no mail server of one's own, every email
the site sends lands in the sandbox's outbox (a small SMTP server in the sandbox process), which /_sandbox/outbox
shows: subject, recipient, text, links. The receipt page says whether an email was sent."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from jobsite.notify import received, sending
from jobsite.sandbox import API_KEY, SandboxServer
from jobsite.settings import Settings
from jobsite.web.app import create_app

from .helpers import Sandbox, free_port, wait_for
from .test_mail import apply, mail_settings


def _kept(server_url: str) -> list[dict[str, Any]]:
    return requests.get(f"{server_url}/_sandbox/outbox.json", timeout=5).json()["messages"]


def test_the_receipt_email_lands_in_the_outbox_and_its_page_shows_it(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    assert outbox.smtp is not None
    s = mail_settings(settings, outbox.smtp.port)
    receipt = apply(create_app(s).test_client(), sandbox)
    assert received.send_confirmation(r, s, receipt) == sending.Status.SENT
    [kept] = _kept(outbox.url)
    assert kept["recipients"] == ["candidate0@example.com"]
    assert kept["subject"].startswith("We received your application for")
    assert f"/applications/{receipt}" in kept["text"]
    assert any(link.endswith(f"/applications/{receipt}") for link in kept["links"])
    page = requests.get(f"{outbox.url}/_sandbox/outbox", timeout=5).text
    assert "candidate0@example.com" in page
    assert f'href="https://careers.acme.test/applications/{receipt}"' in page
    assert (
        'href="/_sandbox/outbox"'
        in requests.get(f"{outbox.url}/_sandbox/", timeout=5, headers={"Accept": "text/html"}).text
    )


def test_the_outbox_undoes_dot_stuffing_and_refuses_a_message_too_big(outbox: SandboxServer) -> None:
    from jobsite.sandbox.outbox import MAX_BYTES

    assert outbox.smtp is not None
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "Dots", "a@example.com", "b@example.com"
    message.set_content("line one\n.\n..two dots\n")
    with smtplib.SMTP("127.0.0.1", outbox.smtp.port, timeout=5) as client:
        client.send_message(message)
        big = EmailMessage()
        big["Subject"], big["From"], big["To"] = "Big", "a@example.com", "b@example.com"
        big.set_content(("x" * 70 + "\n") * (MAX_BYTES // 70 + 10))
        with pytest.raises(smtplib.SMTPException):
            client.send_message(big)
    [kept] = _kept(outbox.url)
    assert kept["text"] == "line one\n.\n..two dots\n"


def test_the_receipt_page_says_whether_an_email_was_sent(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    off = create_app(settings).test_client()  # no JOBSITE_SMTP_URL
    receipt = apply(off, sandbox)
    assert "This site sends no confirmation email" in off.get(f"/applications/{receipt}").get_data(as_text=True)
    assert outbox.smtp is not None
    s = mail_settings(settings, outbox.smtp.port)
    on = create_app(s).test_client()
    receipt = apply(on, sandbox, 1)
    assert "A confirmation email is on its way" in on.get(f"/applications/{receipt}").get_data(as_text=True)
    received.send_confirmation(r, s, receipt)
    assert "We sent a confirmation email" in on.get(f"/applications/{receipt}").get_data(as_text=True)
    assert "Nous avons envoyé un e-mail de confirmation" in on.get(f"/applications/{receipt}?lang=fr").get_data(
        as_text=True
    )


@pytest.mark.slow
def test_jobsite_up_out_of_the_box_sends_the_receipt_email_to_the_outbox() -> None:
    """The quick start (`jobsite up`, no LEVER_API_KEY, no JOBSITE_SMTP_URL): an application's email is in the
    outbox the banner names."""
    data = Path(tempfile.mkdtemp(prefix="jso"))
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(JOBSITE_DATA_DIR=str(data), JOBSITE_SANDBOX_PORT=str(sandbox_port))
    log = data / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobsite", "up", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    site, lever = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}"
    try:
        wait_for(lambda: "jobsite is up" in log.read_text(), timeout=60, what="jobsite up")
        assert f"{lever}/_sandbox/outbox" in log.read_text()
        auth = (API_KEY, "")
        postings = requests.get(f"{lever}/v1/postings", params={"state": "published"}, auth=auth, timeout=5)
        for posting in postings.json()["data"]:
            form = requests.get(f"{lever}/v1/postings/{posting['id']}/apply", auth=auth, timeout=5).json()["data"]
            needs_file = any(
                f["required"] and f.get("type") == "file-upload" for f in form.get("personalInformation", [])
            )
            if not needs_file and len(posting["categories"]["allLocations"]) == 1:
                break
        custom = [
            {
                "id": q["id"],
                "fields": [
                    {"value": (f["options"][0]["text"] if f.get("options") else "yes") if f["required"] else None}
                    for f in q["fields"]
                ],
            }
            for q in form["customQuestions"]
        ]
        body = {
            "personalInformation": [
                {"name": "fullName", "value": "Ada Quick"},
                {"name": "email", "value": "ada.quick@example.com"},
            ],
            "customQuestions": custom,
        }
        answer = requests.post(f"{site}/api/v1/postings/{posting['id']}/applications", json=body, timeout=10)
        assert answer.status_code == 202, answer.text
        receipt = answer.json()["receipt"]
        wait_for(
            lambda: any(m["recipients"] == ["ada.quick@example.com"] for m in _kept(lever)),
            timeout=30,
            what="the confirmation email in the outbox",
        )
        [kept] = _kept(lever)
        assert f"{site}/applications/{receipt}" in kept["links"]
        assert "We sent a confirmation email" in requests.get(f"{site}/applications/{receipt}", timeout=5).text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
