"""How any email of the site is written: a pair of Jinja templates (`templates/email/NAME.txt`, the plain-text
part, and `NAME.html`, the same in simple HTML) rendered in the person's language from the site's Babel
catalogues (`scripts/translations update` extracts their `_()` calls), and the checks that keep outside text out of
every header: the subject is the template's own words with outside values on one line, `To` is the address alone,
and the message is read back as it will be written and not sent if it gained a header.

Whether emails go out at all (`switch`) is said here too, where people look: the dashboard, /readyz, /metrics.
"""

from __future__ import annotations

import email.policy
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

import jinja2

from ..settings import SHARE_DIR, Settings
from ..words import translator

TEMPLATES = SHARE_DIR / "templates" / "email"


@dataclass(frozen=True)
class Switch:
    """Whether emails go out, and if not why: `reason` is "" (on), "not_configured" (no JOBSITE_SMTP_URL) or
    "unfixed_python" (this Python lacks the fix for CVE-2024-6923); `says` is the same in words for the console
    and /readyz."""

    reason: str
    says: str

    @property
    def on(self) -> bool:
        return not self.reason


REASONS = ("not_configured", "unfixed_python")


def switch(settings: Settings) -> Switch:
    """Whether this site sends emails, said where people look (the dashboard, /readyz, /metrics): a start-up line
    on stderr was all there was, and candidates silently got no reference nor link."""
    if settings.mail_off:
        return Switch("unfixed_python", settings.mail_off[:1].upper() + settings.mail_off[1:])
    if settings.smtp is None:
        return Switch("not_configured", "Confirmation emails are off: JOBSITE_SMTP_URL is not set")
    return Switch("", "Confirmation emails are on")


def one_line(value: str) -> str:
    """Outside text as a header may hold it: one line (Lever's titles could carry line breaks), and no `=?` that a
    mail program, or Python's email package itself (CVE-2024-6923), would decode as an encoded word."""
    return " ".join(value.split()).replace("=?", "= ?")


_FIRST_NAME = re.compile(r"[^\W\d_][\w'’-]{0,39}")  # a word of letters, as names are: no link, no sentence


def first_name(full_name: str) -> str:
    """The only text a person typed that an email may repeat: the first word of their name when it looks like
    one, else nothing ("Hello,"). Anyone may make the site send an email to any address, so it carries no text
    of theirs beyond that: no message, no link, under the company's name."""
    words = full_name.split()
    return words[0] if words and _FIRST_NAME.fullmatch(words[0]) else ""


@functools.lru_cache(maxsize=16)
def _environment(language: str, html: bool) -> jinja2.Environment:
    """The templates in one language: HTML escaped, text as written; `_` is that language's gettext (new-style:
    `_("Hello %(name)s,", name=name)` escapes `name` in HTML), whitespace inside it trimmed as pybabel extracts."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=html,  # noqa: S701 (the text part is no HTML)
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True
    gettext = translator(language)
    # (the i18n extension adds this method to the Environment at run time; mypy cannot see it)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext,
        lambda s, p, n: gettext(s) if n == 1 else gettext(p),
        newstyle=True,
    )
    return env


def subject(template: str, language: str, **values: Any) -> str:
    """The subject: the text template's `subject()` macro (which writes nothing into the body), on one line."""
    found = _environment(language, False).get_template(f"{template}.txt")
    return one_line(str(found.make_module(values).subject()))  # type: ignore[attr-defined]


def write(settings: Settings, template: str, language: str, address: str, *, kind: str, **values: Any) -> EmailMessage:
    """The email `template` to `address` in `language` (a BCP 47 tag; English or unknown: as written): the text
    part and the same in HTML, from the same values. Values that came from outside go through `one_line` before
    they reach a subject; `kind` is the Message-ID's left part (which email this is, for the mail server's logs).

    Raises:
        ValueError: the address cannot be written, or the message as written has other headers than the ones set
            (an injection the steps above missed): it is not sent.
    """
    message = EmailMessage()
    message["Subject"] = subject(template, language, **values)
    message["From"] = settings.mail_from
    message["To"] = Address(addr_spec=address)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(kind, domain=parseaddr(settings.mail_from)[1].rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies stay away
    message.set_content(_environment(language, False).get_template(f"{template}.txt").render(values))
    message.add_alternative(
        _environment(language, True).get_template(f"{template}.html").render(values), subtype="html"
    )
    check_headers(message)
    return message


def check_headers(message: EmailMessage) -> None:
    """Read the message back as it will be written to the mail server: the same headers, and only those."""
    try:
        written = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    except MessageError as e:  # a fixed Python's own check (HeaderWriteError)
        raise ValueError(str(e)) from None
    found = BytesHeaderParser(policy=email.policy.default).parsebytes(written).keys()
    if [k.lower() for k in found] != [k.lower() for k in message.keys()]:  # noqa: SIM118 (Message is no dict)
        raise ValueError("the message as written has headers it was not given")
