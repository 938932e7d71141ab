"""Signed links in emails: an address that works without an account because it carries a signature.

A link names one record (a talent sign-up, an alert subscription) and one purpose ("optin", "manage", ...); its
signature is an HMAC of both under JOBSITE_SECRET_KEY, so a link for one purpose opens nothing else, and changing
the secret key voids every link sent. A page behind such a link changes nothing on GET (mail scanners open every
link): a button's POST does.
"""

from __future__ import annotations

import hashlib
import hmac

from ..settings import Settings


def token(settings: Settings, subject_id: str, purpose: str) -> str:
    """The signature of the link for `purpose` to the record `subject_id`."""
    return hmac.new(settings.secret_key.encode(), f"{purpose}\n{subject_id}".encode(), hashlib.sha256).hexdigest()[:32]


def signed(settings: Settings, subject_id: str, given: str, purpose: str) -> bool:
    """Whether `given` is the signature of the link for `purpose` to `subject_id` (compared in constant time)."""
    return hmac.compare_digest(given.encode(), token(settings, subject_id, purpose).encode())


def absolute(settings: Settings, path: str) -> str:
    """The site's address of `path` for an email (JOBSITE_PUBLIC_URL, else the local server)."""
    base = (settings.public_url or f"http://localhost:{settings.port}").rstrip("/")
    return f"{base}{path}"


def signed_url(settings: Settings, prefix: str, subject_id: str, purpose: str) -> str:
    """`prefix/<id>/<signature>` on the site, the shape of every signed link."""
    return absolute(settings, f"{prefix}/{subject_id}/{token(settings, subject_id, purpose)}")
