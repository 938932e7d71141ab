"""The application form: Lever's application questions become a `Form`; a `Form` plus answers become either
field-level errors or a clean `Application`. The server checks every rule here, and the browser checks the same rules,
rendered into the page from `Field.rules()`. What each type of field means (its control, its checks, how its answer
is read) is the registry's, `fieldtypes.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..records import filetypes
from ..records.application import Application, custom_name
from ..records.uploads import UploadedFile
from ..words import N_, Message
from . import fieldtypes
from .fieldtypes import TOO_LONG, FieldType

SCHEME = re.compile(r"^https?://", re.I)
CONSENT_LABEL = N_("I agree to the statement above.")
CONSENT = N_("Consent")  # the consent section's title
# What to do when a required answer is missing, said for the field at hand: by Lever's name for the standard fields,
# else by the kind of control. One place, read by the server's check and rendered into the page for the browser's.
# Every message here is a `Message`: English, and said in the candidate's language by the web layer (words.py).
REQUIRED_BY_NAME = {
    "fullName": N_("Enter your full name."),
    "email": N_("Enter your email address."),
    "phone": N_("Enter your phone number."),
    "resume": N_("Attach your CV or résumé."),
    "currentCompany": N_("Enter your current company."),
    "currentLocation": N_("Enter your current location."),
}
# Lever's standard fields and its EEO section are the same on every form, so their words are ours to translate (by
# field name, and the EEO options by their fixed English text); the questions a company wrote stay as written.
STANDARD_LABELS = {
    "fullName": N_("Full name"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "resume": N_("Resume/CV"),
    "currentCompany": N_("Current company"),
    "currentLocation": N_("Current location"),
    "preferredPostingLocation": N_("Preferred location"),
    "additionalInformation": N_("Additional information"),
}
EEO_LABELS = {
    "gender": N_("Gender"),
    "race": N_("Race"),
    "veteran": N_("Veteran status"),
    "disability": N_("Disability"),
    "disabilitySignature": N_("Signature"),
    "disabilitySignatureDate": N_("Date"),
}
EEO_HELP = {
    "disabilitySignature": N_("If you answered the disability question, type your full name to sign that answer."),
    "disabilitySignatureDate": N_("The date you sign, such as 2026-03-14."),
}
EEO_OPTIONS = {
    str(m): m
    for m in (
        N_("Male"),
        N_("Female"),
        N_("Non-binary"),
        N_("Decline to self-identify"),
        N_("Hispanic or Latino"),
        N_("White"),
        N_("Black or African American"),
        N_("Asian"),
        N_("Native Hawaiian or Other Pacific Islander"),
        N_("American Indian or Alaska Native"),
        N_("Two or More Races"),
        N_("I am a veteran"),
        N_("I am not a veteran"),
        N_("Yes, I have a disability"),
        N_("No, I do not have a disability"),
        N_("I do not want to answer"),
    )
}
PATTERNS = {t.name: t.pattern for t in fieldtypes.TYPES.values() if t.pattern}  # type -> (rule, when broken)


@dataclass(frozen=True)
class Field:
    """One control of the form. `name` is the form field name; `options` are (value, label) pairs."""

    name: str
    label: str
    type: str  # Lever's type: fieldtypes.TYPES says what it means
    required: bool = False
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()
    max_length: int = 0

    def rules(self) -> dict[str, Any]:
        """The rules, and their messages, that the browser checks before submitting: rendered from the same
        definitions the server checks them with, so the two never disagree."""
        chosen = bool(self.kind.choice and self.options)  # the options decide, as on the server (FieldType.check)
        rules: dict[str, Any] = {
            "required": self.required,
            "type": self.type,
            "file": self.kind.file,
            "maxLength": 0 if chosen else self.max_length,
            "options": [v for v, _ in self.options],
            "messages": {"required": self.required_message, "maxLength": Message(TOO_LONG, n=self.max_length)},
        }
        if self.kind.pattern:
            regex, message = self.kind.pattern
            rules.update(pattern=regex.pattern, flags="i" if regex.flags & re.IGNORECASE else "")
            rules["messages"]["pattern"] = message
        return rules

    @property
    def kind(self) -> FieldType:
        """What this field's type means (the registry's entry; text for a type this site does not know)."""
        return fieldtypes.of(self.type)

    @property
    def required_message(self) -> Message:
        """What the candidate should do when this required field is left empty."""
        return REQUIRED_BY_NAME.get(self.name) or self.kind.required


@dataclass(frozen=True)
class Section:
    title: str  # a `Message` for the sections we name; a question set's title as Lever has it otherwise
    fields: tuple[Field, ...]
    note: str = ""


@dataclass(frozen=True)
class Form:
    """The application form of one posting, and what delivery needs to map answers back to Lever's body."""

    posting_id: str
    sections: tuple[Section, ...]
    custom_sets: tuple[tuple[str, int], ...]  # (question set id, number of fields), in Lever's order
    consent_policies: tuple[tuple[str, str], ...] = ()  # (store|marketing, compliancePolicyId)
    consent_html: str = ""

    def fields(self) -> list[Field]:
        return [f for s in self.sections for f in s.fields]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields() if f.name == name), None)


class ValidationFailed(Exception):
    """Field-level errors: form field name -> message for the candidate."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(f"{len(errors)} field(s) need attention")
        self.errors = errors


def build_form(questions: Mapping[str, Any]) -> Form:
    """Turn Lever's application questions into a `Form`."""
    personal = []
    for q in questions.get("personalInformation") or []:
        name = q.get("name", "")
        kind = "email" if name == "email" else q.get("type", "text")
        personal.append(
            Field(
                name,
                STANDARD_LABELS.get(name) or q.get("text") or name,
                kind,
                bool(q.get("required")),
                options=tuple((o["text"], o["text"]) for o in q.get("options") or []),
                max_length=fieldtypes.of(kind).max_length,
            )
        )
    sections = [Section(N_("Personal information"), tuple(personal))]
    links = tuple(
        Field(
            f"urls[{u['name']}]",
            u.get("text") or u["name"],
            "url",
            bool(u.get("required")),
            max_length=fieldtypes.TYPES["url"].max_length,
        )
        for u in questions.get("urls") or []
    )
    if links:
        sections.append(Section(N_("Links"), links))
    custom_sets = []
    for qset in questions.get("customQuestions") or []:
        fields = []
        for i, f in enumerate(qset.get("fields") or []):
            kind = f.get("type", "text")
            fields.append(
                Field(
                    custom_name(qset["id"], i),
                    f.get("text", ""),
                    kind,
                    bool(f.get("required")),
                    f.get("description") or "",
                    tuple((o["text"], o["text"]) for o in f.get("options") or []),
                    fieldtypes.of(kind).max_length,
                )
            )
        custom_sets.append((qset["id"], len(fields)))
        sections.append(Section(qset.get("text") or N_("Questions"), tuple(fields)))
    eeo = questions.get("eeoQuestions") or {}
    if eeo:
        sections.append(
            Section(
                N_("Voluntary self-identification"),
                tuple(
                    Field(
                        f"eeo[{name}]",
                        EEO_LABELS.get(name) or q.get("text") or name,
                        q.get("type", "text"),
                        False,
                        EEO_HELP.get(name, ""),
                        tuple(
                            (o.get("optionId", o["text"]), EEO_OPTIONS.get(o["text"], o["text"]))
                            for o in q.get("options") or []
                        ),
                        fieldtypes.of(q.get("type", "text")).max_length,
                    )
                    for name, q in eeo.items()
                ),
                note=N_(
                    "These questions are optional. Your answers are kept apart from your application and never "
                    "affect how it is considered."
                ),
            )
        )
    policies = []
    consent_html = ""
    for kind, disclosure in (questions.get("consentDisclosures") or {}).items():
        if disclosure.get("compliancePolicyId"):
            policies.append((kind, disclosure["compliancePolicyId"]))
        if kind == "store" and disclosure.get("displayState", "").endswith("_SHOWN"):
            consent_html = disclosure.get("statementHtml") or disclosure.get("statement") or ""
            # The statement is shown once, above the box (apply.html); the box's own label only says yes to it.
            consent_html = consent_html or N_("I agree to the storage of my data.")
            sections.append(Section(CONSENT, (Field("consent[store]", CONSENT_LABEL, "consent", False),)))
    return Form(questions.get("id", ""), tuple(sections), tuple(custom_sets), tuple(policies), consent_html)


def _check(f: Field, value: Any) -> Message | None:
    """The candidate-facing error for one answer, or None."""
    empty = value in (None, "", []) or (isinstance(value, UploadedFile) and not value.content)
    if empty:
        return f.required_message if f.required else None
    return f.kind.check(value, [o for o, _ in f.options], f.max_length)


def complete_url(value: str) -> str:
    """A checked web address as Lever should link it: https:// before one written without a scheme."""
    return value if SCHEME.match(value) else "https://" + value


def check_file(upload: UploadedFile, max_bytes: int) -> Message | None:
    """Size and content checks for an uploaded file."""
    if len(upload.content) > max_bytes:
        return Message(N_("This file is larger than %(mb)s MB."), mb=max_bytes // 2**20)
    if filetypes.kind_of(upload.filename, upload.content) is None:
        return N_("Upload a PDF, Word (doc, docx), OpenDocument (odt), RTF or plain text file.")
    return None


def validate(
    form: Form, answers: Mapping[str, Any], uploads: Mapping[str, UploadedFile], max_file_bytes: int
) -> Application:
    """A clean `Application`, or `ValidationFailed` with a message per field. Unknown answers are ignored."""
    errors: dict[str, str] = {}
    app = Application(form.posting_id)
    custom_values: dict[str, list[Any]] = {sid: [None] * n for sid, n in form.custom_sets}
    for f in form.fields():
        ftype = f.kind
        value: Any = ftype.read(uploads.get(f.name) if ftype.file else answers.get(f.name))
        problem = _check(f, value) if not ftype.consent else None
        if problem is None and ftype.file and value is not None and value.content:
            problem = check_file(value, max_file_bytes)
        if problem:
            errors[f.name] = problem
            continue
        if value in (None, "", [], False) or (isinstance(value, UploadedFile) and not value.content):
            continue
        if ftype.file:
            app.files[f.name] = value.filename or "file"
        elif f.name.startswith("urls["):
            app.urls[f.name[5:-1]] = complete_url(value)
        elif f.name.startswith("eeo["):
            app.eeo[f.name[4:-1]] = value
        elif f.name.startswith("cards["):
            set_id, _, index = f.name[6:-1].partition("][field")
            custom_values[set_id][int(index)] = value
        elif ftype.consent:
            pass
        else:
            app.personal[f.name] = value
    if errors:
        raise ValidationFailed(errors)
    app.custom = {sid: values for sid, values in custom_values.items()}
    store_given = str(answers.get("consent[store]", "")).lower() in ("1", "true", "on", "yes")
    for kind, policy in form.consent_policies:
        if kind == "store" and store_given:
            app.consent["store"] = {"provided": True, "compliancePolicyId": policy}
    return app


def answers_from_lever_body(form: Form, body: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a body shaped like Lever's Apply-to-a-posting (the JSON API takes that shape) into form answers."""
    answers: dict[str, Any] = {}

    def items(key: str) -> list[Any]:
        found = body.get(key)
        return found if isinstance(found, list) else []  # a wrong type is answered as a missing part

    for item in items("personalInformation"):
        if isinstance(item, dict) and item.get("name") and item.get("name") != "resume":
            answers[str(item["name"])] = item.get("value")
    for item in items("urls"):
        if isinstance(item, dict) and item.get("name"):
            answers[f"urls[{item['name']}]"] = item.get("value")
    for qset in items("customQuestions"):
        if isinstance(qset, dict) and isinstance(qset.get("fields"), list):
            for i, f in enumerate(qset["fields"]):
                if isinstance(f, dict):
                    answers[custom_name(str(qset.get("id")), i)] = f.get("value")
    eeo = body.get("eeoResponses")
    if isinstance(eeo, dict):
        answers.update({f"eeo[{k}]": v for k, v in eeo.items()})
    consent = body.get("consent")
    if isinstance(consent, dict) and isinstance(consent.get("store"), dict):
        answers["consent[store]"] = "true" if consent["store"].get("provided") else ""
    return {k: v for k, v in answers.items() if form.field(k) is not None or k == "consent[store]"}
