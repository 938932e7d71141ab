"""The confirmation email of a job alert subscription (double opt-in): the only email a pending subscription gets.

Anyone may ask for alerts for any address, so the email carries no text of the asker's: not their search words, not
a team name they typed, only the company's words, the rhythm (ours) and the signed link, alone on its line in the
text part. The link opens a page with one button (mail scanners open links); the button's POST confirms. It is sent
at most once per subscription (its record is `mail:alert-confirm:<id>`, notify/sending.py), and a stranger asking
again for the same address gets no second one (subscriptions.subscribe).
"""

from __future__ import annotations

from ..notify import messages, sending
from ..notify.sending import Letter, Status
from . import subscriptions
from .context import Alerting
from .subscriptions import State

MAIL_KEEP_S = (subscriptions.EXPIRE_DAYS + 1) * 86400


def send(alerting: Alerting, sub_id: str, *, last_try: bool = True) -> Status | None:
    """Send the subscription's confirmation email at most once. Returns what became of it, or None when there is
    nothing to send (no mail server, the subscription is confirmed, ended or gone).

    Raises:
        MailDeferred: the mail server could not take it now and this is not the `last_try`.
    """
    settings = alerting.settings
    if settings.smtp is None:
        return None

    def write() -> Letter | None:
        sub = subscriptions.get(alerting.redis, sub_id)
        if sub is None or sub.state != State.PENDING:
            return None
        message = messages.write(
            settings,
            "alert_confirm",
            sub.language,
            sub.email,
            kind="alertconfirm",
            company=settings.company_name,
            url=subscriptions.confirm_url(settings, sub_id),
            days=subscriptions.EXPIRE_DAYS,
            frequency=str(sub.frequency),
        )
        return Letter(message, sub.email)

    return sending.send_once(
        alerting.redis,
        settings.smtp,
        subscriptions.CONFIRM_MAIL.format(sub_id),
        write,
        label=f"alert confirmation {sub_id[:8]}",
        last_try=last_try,
        keep_s=MAIL_KEEP_S,
    )
