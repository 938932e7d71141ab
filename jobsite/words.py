"""The site's own words for candidates, written in English and marked for the translation catalogue.

The modules that write them (forms, board) sit below the web and run without Flask, so they cannot know the
candidate's language: they hand out `Message`s, which read as English anywhere (a `Message` is a `str`), and the
web layer says them in the candidate's language when it shows them (web/i18n.py `say`). Text that is not a
`Message` (a posting's title, Lever's question labels) is the company's own and is never translated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from babel.support import Translations

from .settings import SHARE_DIR


class Message(str):
    """A message of ours: English as a string; `msgid` (with %(name)s placeholders) and `params` let the web layer
    say it in another language."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Message:
        self = super().__new__(cls, msgid % params if params else msgid)
        self.msgid, self.params = str(msgid), params
        return self


def translator(language: str) -> Callable[[str], str]:
    """gettext in `language` (a BCP 47 tag; English or unknown: the words as written) where there is no request,
    as in the workers' emails."""
    found = Translations.load(str(SHARE_DIR / "translations"), [language.replace("-", "_")])
    return found.gettext


def N_(msgid: str) -> Message:
    """Mark `msgid` for the catalogue (pybabel extracts N_ by default); it stays English until the web says it."""
    return Message(msgid)
