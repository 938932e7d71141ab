"""The registry of form field types: one entry per Lever question type, and everything the site does with an answer
of that type in one place: how the raw answer is read, what a required one says when it is missing, the longest
answer, the pattern the server and the browser check, whether it must be one (or some) of the options, whether it is
a file, which control the page draws (templates/candidates/_field.html), and the answer's schema in the API's
document (web/openapi.py). The sandbox checks choices as Lever does from the same entries.

Adding a type is one entry here (and, for a new kind of control, its branch in _field.html); a type Lever sends that
is not here is read and checked as `text`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..records.contacts import EMAIL
from ..words import N_, Message

# A web address with its scheme, or without one as most people write it (linkedin.com/in/ada: a dotted host, no "@"
# nor ":" so that an email or another scheme is not taken for one), completed with https:// (`complete_url`). The
# browser checks the same pattern (Field.rules), so it is written in the syntax both understand.
URL = re.compile(r"^(?:https?://[^\s/$.?#].[^\s]*|[^\s/$.?#:@]+\.[^\s/$.?#:@][^\s/:@]*(?:[/?#][^\s]*)?)$", re.I)
REQUIRED = N_("Answer this question.")
TOO_LONG = N_("Please keep this under %(n)s characters.")
TRUE = ("1", "true", "on", "yes")


class Control(StrEnum):
    """The kinds of control the page draws (templates/candidates/_field.html has one branch per kind)."""

    INPUT = "input"  # <input type=...>
    TEXTAREA = "textarea"
    SELECT = "select"  # one of the options, from a list
    CHOICES = "choices"  # radio buttons (one) or checkboxes (many)
    FILE = "file"
    CONSENT = "consent"  # one checkbox saying yes to the statement above


class Choice(StrEnum):
    NONE = ""
    ONE = "one"  # the answer is one of the options
    MANY = "many"  # the answer is a list of the options


@dataclass(frozen=True)
class FieldType:
    name: str  # Lever's type
    control: Control = Control.INPUT
    input_type: str = "text"  # for Control.INPUT: the <input>'s type
    max_length: int = 500  # the longest answer a field of this type takes (0: not counted in characters)
    required: Message = REQUIRED  # what to do when a required answer is missing (a field's name may say better)
    pattern: tuple[re.Pattern[str], Message] | None = None  # the rule an answer follows, and what breaking it says
    choice: Choice = Choice.NONE
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})  # the answer in the API's document

    @property
    def file(self) -> bool:
        return self.control == Control.FILE

    @property
    def consent(self) -> bool:
        return self.control == Control.CONSENT

    def read(self, raw: Any) -> Any:
        """The answer as the checks take it, from what a form or a JSON body sent: a list for several options, a
        boolean for consent, text without the spaces around it; a file as it came."""
        if self.choice == Choice.MANY:
            values = raw if isinstance(raw, list) else [raw] if raw else []
            return [v.strip() if isinstance(v, str) else v for v in values if v]
        if self.consent:
            return str(raw).lower() in TRUE if raw is not None else False
        return raw.strip() if isinstance(raw, str) else raw

    def check(self, value: Any, options: list[str], max_length: int) -> Message | None:
        """The candidate-facing error for a given (non-empty) answer to a field with these options and this limit,
        or None. A file's checks need the settings' limits (forms.check_file)."""
        if self.file or self.consent:
            return None
        if self.choice == Choice.MANY:
            if any(not isinstance(v, str) or v not in options for v in value):
                return N_("Choose from the options given.")
            return None
        if not isinstance(value, str):
            return N_("This answer is not valid.")
        if self.choice == Choice.ONE and options:  # the options decide, however long one is
            return None if value in options else N_("Choose one of the options given.")
        if max_length and len(value) > max_length:
            return Message(TOO_LONG, n=max_length)
        if self.pattern and not self.pattern[0].match(value):
            return self.pattern[1]
        return None


_ONE_OF = N_("Choose one of the options.")
TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        FieldType("text"),
        FieldType("textarea", Control.TEXTAREA, max_length=10_000),
        FieldType("university", max_length=300),
        FieldType(
            "email",
            input_type="email",
            required=N_("Enter your email address."),
            pattern=(EMAIL, N_("Enter an email address like name@example.com.")),
        ),
        FieldType(
            "url",
            input_type="url",
            max_length=2_000,
            required=N_("Enter a web address, such as linkedin.com/in/your-name."),
            pattern=(URL, N_("Enter a web address, such as linkedin.com/in/your-name.")),
        ),
        FieldType("dropdown", Control.SELECT, required=_ONE_OF, choice=Choice.ONE),
        FieldType("multiple-choice", Control.CHOICES, required=_ONE_OF, choice=Choice.ONE),
        FieldType(
            "multiple-select",
            Control.CHOICES,
            max_length=0,
            required=N_("Choose at least one option."),
            choice=Choice.MANY,
            schema={"type": "array", "items": {"type": "string"}},
        ),
        FieldType(
            "file-upload",
            Control.FILE,
            max_length=0,
            required=N_("Choose a file to upload."),
            schema={"type": "string", "description": "The file goes in a multipart part named after the field."},
        ),
        FieldType(
            "consent", Control.CONSENT, max_length=0, required=N_("Tick the box to agree."), schema={"type": "boolean"}
        ),
    )
}


def of(name: str) -> FieldType:
    """The type named `name`, or text for one this site does not know (Lever may add types)."""
    return TYPES.get(name) or TYPES["text"]
