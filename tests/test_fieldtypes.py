"""The registry of form field types (intake/fieldtypes.py) is the one place a type is defined: every type the
sandbox's forms ask is in it, the API's document lists what it holds, a type it does not know is read and checked as
text, and where a choice has options, the options decide (on the server and in the rules the browser checks)."""

from __future__ import annotations

import pytest

from jobsite.intake import fieldtypes
from jobsite.intake.forms import Field, ValidationFailed, build_form, validate
from jobsite.sandbox.seed import make_postings, make_questions
from jobsite.web import openapi


def sandbox_types() -> set[str]:
    types: set[str] = set()
    for index, posting in enumerate(make_postings()):
        questions = make_questions(posting, index)
        types |= {q.get("type", "text") for q in questions.get("personalInformation") or []}
        types |= {f["type"] for qset in questions.get("customQuestions") or [] for f in qset.get("fields") or []}
        types |= {q.get("type", "text") for q in (questions.get("eeoQuestions") or {}).values()}
    return types


def test_every_type_the_forms_ask_is_in_the_registry() -> None:
    asked = sandbox_types()
    assert {"text", "textarea", "dropdown", "multiple-choice", "multiple-select", "file-upload"} <= asked
    assert asked - set(fieldtypes.TYPES) == set()


def test_the_api_document_lists_the_registry() -> None:
    said = openapi.SCHEMAS["Field"]["properties"]["type"]["description"]
    assert all(name in said for name in fieldtypes.TYPES)
    assert {"type": "array", "items": {"type": "string"}} in openapi.ANSWER["anyOf"]  # multiple-select's answer


def test_a_type_the_site_does_not_know_is_text() -> None:
    form = build_form(
        {
            "id": "p",
            "customQuestions": [
                {
                    "id": "set",
                    "text": "Q",
                    "fields": [{"type": "colour-picker", "text": "Favourite colour", "required": True}],
                }
            ],
        }
    )
    (field,) = [f for f in form.fields() if f.type == "colour-picker"]
    assert field.kind is fieldtypes.TYPES["text"]
    assert field.max_length == fieldtypes.TYPES["text"].max_length  # bounded, as any text
    with pytest.raises(ValidationFailed) as failed:
        validate(form, {field.name: "x" * (field.max_length + 1)}, {}, 2**20)
    assert field.name in failed.value.errors


def test_where_a_choice_has_options_the_options_decide() -> None:
    long_option = "I have read the long statement " + "and agree " * 60
    field = Field(
        "cards[set][field0]",
        "Agree?",
        "dropdown",
        True,
        options=((long_option, long_option),),
        max_length=fieldtypes.TYPES["dropdown"].max_length,
    )
    assert len(long_option) > field.max_length
    assert field.kind.check(long_option, [long_option], field.max_length) is None
    assert field.kind.check("something else", [long_option], field.max_length) is not None
    assert field.rules()["maxLength"] == 0  # the browser leaves it to the options too
    free = Field("cards[set][field1]", "Anything?", "dropdown", False, max_length=field.max_length)
    assert free.kind.check("y" * (field.max_length + 1), [], field.max_length) is not None  # no options: bounded
