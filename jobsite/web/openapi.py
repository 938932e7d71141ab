"""The API's contract: an OpenAPI 3.1 document of every endpoint, body, error and header, served as JSON at
/api/v1/openapi.json and as a page for people at /api/ (rendered here, no CDN, no script).

The document is written by hand beside the code it describes, and the test suite holds them together: it validates
the document (openapi-spec-validator) and runs property-based tests (schemathesis) against the live app, so an answer
that the document does not describe fails the build.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template
from markupsafe import Markup, escape

from ..intake import fieldtypes
from ..postings.catalog import CatalogUnavailable
from ..records.store import State
from ..services import get_services
from .candidates import UNKNOWN, site_url

bp = Blueprint("api_docs", __name__)

JSON = "application/json"
STATUSES = [s.public for s in State] + [UNKNOWN]  # unknown: while our records are unreachable
UNCONFIRMED = "unconfirmed"  # a talent sign-up whose address is not confirmed yet (sourcing/optin.py)
FILTERS = {
    "team": "Team",
    "department": "Department",
    "location": "One of the posting's locations",
    "commitment": "Commitment (Full-time, Part-time, ...)",
    "workplace": "onsite, remote or hybrid",
    "q": "Search words: each must start a word of the title, team or description",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"]} if nullable else {"type": "string"}


def _error(description: str, *headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": _ref("Error")}}}
    if headers:
        answer["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in headers}
    return answer


UNAUTHORIZED = _error(
    "An Authorization header was sent with a wrong or revoked key (never treated as anonymous).", "WWW-Authenticate"
)
UNAVAILABLE = _error(
    "Postings could not be read (Lever unreachable and nothing cached), or keys could not be checked.", "Retry-After"
)

# A custom answer as each field type takes it (intake/fieldtypes.py): any of them, said type by type.
ANSWER = {
    "anyOf": [*{repr(t.schema): dict(t.schema) for t in fieldtypes.TYPES.values()}.values(), {"type": "null"}],
    "description": "The answer as the field's type takes it: "
    + "; ".join(
        f"{t.name}: {t.schema.get('type')}{' of ' + t.schema['items']['type'] if 'items' in t.schema else ''}"
        for t in fieldtypes.TYPES.values()
    )
    + ".",
}

# What the API takes of a name, an email and a link (intake/forms, sourcing/enrol): the document admits no less.
NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}
EMAIL = {"type": "string", "format": "email", "maxLength": 200}
LINK = {"type": "string", "maxLength": 300, "pattern": "^\\s*https?://[^\\s\\x00-\\x1f\\x7f-\\x9f]+\\s*$"}
CONSENT = {"enum": [True, "true", "on", "yes", "1"]}


SCHEMAS: dict[str, Any] = {
    "Autofill": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "fullName": {"type": "string"},
            "email": {"type": "string"},
            "phone": {"type": "string"},
            "currentCompany": {"type": "string"},
            "currentLocation": {"type": "string"},
            "urls": {"type": "array", "items": {"type": "string", "format": "uri"}, "maxItems": 5},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "The HTTP status in words."},
            "message": {"type": "string", "description": "What happened and what to do, in words for people."},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "422 only: a message per form field name.",
            },
        },
    },
    "Posting": {
        "type": "object",
        "required": ["id", "text", "locations", "workplaceType", "descriptionHtml", "lists", "closingHtml", "urls"],
        "properties": {
            "id": {"type": "string"},
            "text": {"type": "string", "description": "The job title."},
            "team": _text(True),
            "department": _text(True),
            "commitment": _text(True),
            "level": _text(True),
            "country": _text(True),
            "locations": {"type": "array", "items": {"type": "string"}},
            "workplaceType": {"type": "string", "enum": ["unspecified", "onsite", "remote", "hybrid"]},
            "createdAt": {"type": ["integer", "null"], "description": "Epoch milliseconds."},
            "updatedAt": {"type": ["integer", "null"], "description": "Epoch milliseconds."},
            "salaryRange": {
                "type": ["object", "null"],
                "description": "Lever's salaryRange (currency, interval, min, max).",
            },
            "descriptionHtml": {"type": "string", "description": "Sanitised HTML."},
            "lists": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["text", "content"],
                    "properties": {
                        "text": {"type": "string"},
                        "content": {"type": "string", "description": "Sanitised HTML."},
                    },
                },
            },
            "closingHtml": {"type": "string", "description": "Sanitised HTML."},
            "urls": {
                "type": "object",
                "required": ["show", "apply", "applications"],
                "properties": {
                    "show": {"type": "string", "format": "uri", "description": "The posting's page."},
                    "apply": {"type": "string", "format": "uri", "description": "Its application form."},
                    "applications": {"type": "string", "format": "uri", "description": "Where to POST applications."},
                },
            },
        },
    },
    "Field": {
        "type": "object",
        "required": ["name", "label", "type", "required", "options"],
        "properties": {
            "name": {"type": "string", "description": "The multipart field name (and the key of 422 errors)."},
            "label": {"type": "string"},
            "required": {"type": "boolean"},
            "description": {"type": "string"},
            "type": {
                "type": "string",
                "description": ", ".join(fieldtypes.TYPES) + " (another type is taken as text).",
            },
            "options": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["value", "label"],
                    "properties": {"value": {"type": "string"}, "label": {"type": "string"}},
                },
            },
        },
    },
    "PostingWithForm": {
        "allOf": [
            _ref("Posting"),
            {
                "type": "object",
                "required": ["form"],
                "properties": {
                    "form": {
                        "type": "array",
                        "description": "The application form, section by section.",
                        "items": {
                            "type": "object",
                            "required": ["title", "fields"],
                            "properties": {
                                "title": {"type": "string"},
                                "note": {"type": "string"},
                                "fields": {"type": "array", "items": _ref("Field")},
                            },
                        },
                    }
                },
            },
        ],
    },
    "Application": {
        "type": "object",
        "required": ["personalInformation"],
        "description": "The body of Lever's Apply to a posting. Custom answers go by position within each question "
        "set, in the form's order. Files are sent as multipart/form-data. What else a posting "
        "requires is its form's (GET /api/v1/postings/{id}): a body valid here may still get a 422.",
        "properties": {
            "personalInformation": {
                "type": "array",
                "items": _ref("NameValue"),
                "minItems": 2,
                "description": "fullName and email are required; phone, location, ...",
            },
            "urls": {"type": "array", "items": _ref("NameValue")},
            "customQuestions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "fields": {"type": "array", "items": {"type": "object", "properties": {"value": ANSWER}}},
                    },
                },
            },
            "eeoResponses": {"type": "object", "additionalProperties": {"type": "string"}},
            "consent": {"type": "object", "additionalProperties": {"type": "object"}},
            "source": {"type": "string", "description": "Where the candidate came from; recorded as Lever's source."},
            "lever-source": {"type": "string", "description": "Lever's hosted-site name for `source`."},
            "utm_source": {"type": "string", "description": "The source, when `source` is not given."},
            "utm_medium": {"type": "string"},
            "utm_campaign": {"type": "string", "description": "The campaign, kept for the pipeline report."},
        },
    },
    "NameValue": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "string"}}},
    "MultipartApplication": {
        "type": "object",
        "description": "The form's field names (see the posting's form) with files, or the Application JSON in a "
        "part named `application` plus the files.",
        "properties": {
            "application": {
                "type": "string",
                "minLength": 2,
                "contentMediaType": JSON,
                "contentSchema": _ref("Application"),
            },
            "resume": {
                "type": "string",
                "contentEncoding": "binary",
                "description": "A resume (an empty part, as a form with no file chosen sends: none).",
            },
            "source": {"type": "string"},
        },
        "additionalProperties": True,
    },
    "Receipt": {
        "type": "object",
        "required": ["receipt", "status", "status_url"],
        "properties": {
            "receipt": {"type": "string"},
            "status": {"type": "string", "enum": [*STATUSES, UNCONFIRMED]},
            "status_url": {"type": "string", "format": "uri"},
        },
    },
    "ApplicationStatus": {
        "type": "object",
        "required": ["receipt", "status", "posting", "received_at", "delivered_at"],
        "description": "No personal data.",
        "properties": {
            "receipt": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "posting": {"type": ["string", "null"]},
            "received_at": {"type": ["integer", "null"], "description": "Epoch seconds."},
            "delivered_at": {"type": ["integer", "null"], "description": "Epoch seconds."},
        },
    },
}

SCHEMAS.update(
    {  # job alerts
        "AlertRequest": {
            "type": "object",
            "required": ["email"],
            "additionalProperties": True,
            "description": "Ask for job alerts for an address. Nothing is sent but one confirmation email until its "
            "person presses the button behind its link; unconfirmed, the request is removed after 7 days.",
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 200},
                "filters": {
                    "type": ["object", "null"],
                    "additionalProperties": False,
                    "description": "The job list's filters (each optional): a posting matches when it has "
                    "every value given and every search word, as a word's beginning.",
                    "properties": {
                        name: {"type": ["string", "null"], "maxLength": 200}
                        for name in ("team", "department", "location", "commitment", "workplace", "q")
                    },
                },
                "frequency": {
                    "enum": ["instant", "daily", "weekly"],
                    "default": "daily",
                    "description": "As jobs open (gathered over a few minutes), daily or weekly.",
                },
                "language": {
                    "enum": ["en", "de", "fr"],
                    "description": "The emails' language; by default the request's (Accept-Language).",
                },
            },
        },
        "AlertAccepted": {
            "type": "object",
            "required": ["status"],
            "description": "The same answer whatever the address holds.",
            "properties": {"status": {"const": "confirmation_sent"}},
        },
    }
)

SCHEMAS.update(
    {  # the talent community (sourcing)
        "TalentSignup": {
            "type": "object",
            "required": ["name", "email", "consent"],
            "description": "Join the talent community: created in Lever as a sourced opportunity without a posting, "
            "tagged with the interests. Attribution as for an application (source, utm_*).",
            "properties": {
                "name": NAME,
                "email": EMAIL,
                "phone": {"type": ["string", "null"], "maxLength": 40},
                "links": {
                    "type": ["array", "null"],
                    "maxItems": 5,
                    "items": {"anyOf": [LINK, {"type": "string", "pattern": "^\\s*$"}]},
                },
                "interests": {
                    "type": ["object", "null"],
                    "properties": {
                        "teams": {
                            "type": ["array", "null"],
                            "items": {"type": "string"},
                            "description": "Teams of open postings.",
                        },
                        "locations": {
                            "type": ["array", "null"],
                            "items": {"type": "string"},
                            "description": "Locations of open postings.",
                        },
                    },
                },
                "alerts": {
                    "description": "`true`: also email job alerts for the interests, weekly (only when the site "
                    "sends email), confirmed with the sign-up's own opt-in; any other value: none."
                },
                "consent": {
                    "description": 'To be kept on file (required): `{"store": true}`, or `true`.',
                    "anyOf": [{"type": "object", "required": ["store"], "properties": {"store": CONSENT}}, CONSENT],
                },
                **{
                    name: {"description": "A string; a value of another type is ignored."}
                    for name in ("source", "utm_source", "utm_campaign")
                },
            },
        },
        "MultipartTalentSignup": {
            "type": "object",
            "description": "The same fields as form fields (links, teams and locations repeated), "
            "`consent=true`, and an optional `resume` file.",
            "required": ["name", "email", "consent"],
            "properties": {
                "name": NAME,
                "email": EMAIL,
                "consent": {"enum": ["true", "on", "yes", "1"]},
                "resume": {"type": "string", "contentEncoding": "binary"},
            },
            "additionalProperties": True,
        },
        "TalentStatus": {
            "type": "object",
            "required": ["receipt", "status"],
            "description": "No personal data.",
            "properties": {
                "receipt": {"type": "string"},
                "status": {"type": "string", "enum": [*STATUSES, UNCONFIRMED]},
            },
        },
    }
)

HEADERS = {
    "ETag": {
        "description": "The version of this answer; send it back in If-None-Match for a 304.",
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "How long caches may keep the answer.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": 'Bearer, with error="invalid_token".', "schema": {"type": "string"}},
    "X-Request-Id": {
        "description": "The request's id, in the site's logs too (send one to choose it).",
        "schema": {"type": "string"},
    },
}


def document(example_posting: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document; `example_posting` is a published posting's id, so the examples are real."""
    posting_id: dict[str, Any] = {"name": "posting_id", "in": "path", "required": True, "schema": {"type": "string"}}
    if example_posting:
        posting_id["example"] = example_posting
    receipt = {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}}
    filters = [
        {"name": k, "in": "query", "required": False, "description": v, "schema": {"type": "string"}}
        for k, v in FILTERS.items()
    ]
    if_none_match = {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "An ETag from an earlier answer.",
    }
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Any unique string: a repeated submission with the same key returns the first "
        "receipt instead of a second application.",
    }
    optional_key: list[dict[str, list[str]]] = [{}, {"integratorKey": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobsite API",
            "version": "1",
            "description": "Open postings, their application forms, applications and their status, for company "
            "career pages and their backends. Browsers may read it from any origin, or only from "
            "JOBSITE_EMBED_ORIGINS. No cookies. A company's backend may send "
            "`Authorization: Bearer <key>` (`jobsite admin add-api-client NAME`): its applications "
            "skip the per-address limit for the key's own.",
        },
        "servers": [{"url": site_url()}],
        "security": optional_key,
        "paths": {
            "/api/v1/postings": {
                "get": {
                    "operationId": "listPostings",
                    "summary": "Published postings, filtered and searched",
                    "parameters": [*filters, if_none_match],
                    "responses": {
                        "200": {
                            "description": "The postings that match.",
                            "headers": {h: {"$ref": f"#/components/headers/{h}"} for h in ("ETag", "Cache-Control")},
                            "content": {
                                JSON: {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data", "count"],
                                        "properties": {
                                            "data": {"type": "array", "items": _ref("Posting")},
                                            "count": {"type": "integer"},
                                        },
                                    }
                                }
                            },
                        },
                        "304": {
                            "description": "Unchanged since the ETag sent in If-None-Match.",
                            "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
                        },
                        "401": UNAUTHORIZED,
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/postings/{posting_id}": {
                "get": {
                    "operationId": "getPosting",
                    "summary": "One open posting with its application form",
                    "parameters": [posting_id],
                    "responses": {
                        "200": {
                            "description": "The posting and its form.",
                            "content": {
                                JSON: {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {"data": _ref("PostingWithForm")},
                                    }
                                }
                            },
                        },
                        "401": UNAUTHORIZED,
                        "404": _error("No open posting with this id."),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/postings/{posting_id}/applications": {
                "post": {
                    "operationId": "apply",
                    "summary": "Apply to a posting",
                    "description": "Accepted durably and answered at once; delivered to Lever when Lever can take it.",
                    "parameters": [posting_id, idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {"schema": _ref("Application")},
                            "multipart/form-data": {"schema": _ref("MultipartApplication")},
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted: the receipt, and where to follow it.",
                            "content": {JSON: {"schema": _ref("Receipt")}},
                        },
                        "400": _error("Not JSON, not an object, or a filled honeypot field."),
                        "401": UNAUTHORIZED,
                        "404": _error("No open posting with this id: it may have closed."),
                        "413": _error("Too large: JSON over 256 KB, or files over the site's limits."),
                        "415": _error("Neither application/json nor multipart/form-data."),
                        "422": _error("Some answers need attention: `errors` has a message per field."),
                        "429": _error(
                            "Too many applications this hour from this address (or this integrator key).", "Retry-After"
                        ),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/autofill": {
                "post": {
                    "operationId": "autofill",
                    "summary": "Read a resume's name, email, phone, links, company and location",
                    "description": "To fill an application form as soon as the candidate chooses a resume. The file is "
                    "read in memory (PDF, DOCX, ODT or plain text) and stored nowhere. Limited per "
                    "address like applications, with its own count.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["resume"],
                                    "properties": {
                                        "resume": {
                                            "type": "string",
                                            "contentMediaType": "application/octet-stream",
                                            "minLength": 1,
                                            "description": "The resume file, under the site's file limit.",
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "What the resume gave; a field it did not give is absent.",
                            "content": {JSON: {"schema": _ref("Autofill")}},
                        },
                        "400": _error("No multipart part named `resume`."),
                        "401": UNAUTHORIZED,
                        "413": _error("The file is over the site's file limit."),
                        "415": _error("Not a PDF, DOCX, ODT or text file."),
                        "422": _error(
                            "A document of a kind we read that could not be read: broken, or so costly to "
                            "read that it reached the reader's limits on time, memory or size."
                        ),
                        "429": _error(
                            "Too many resumes this hour from this address (or for this API key).", "Retry-After"
                        ),
                        "503": _error("This server is reading as many resumes as it allows; try again.", "Retry-After"),
                    },
                }
            },
            "/api/v1/applications/{receipt}": {
                "get": {
                    "operationId": "getApplication",
                    "summary": "An application's status, by its receipt",
                    "parameters": [receipt],
                    "responses": {
                        "200": {
                            "description": "Its status (no personal data).",
                            "headers": {"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}},
                            "content": {JSON: {"schema": _ref("ApplicationStatus")}},
                        },
                        "401": UNAUTHORIZED,
                        "404": _error("No application with this receipt."),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/talent": {
                "post": {
                    "operationId": "joinTalentCommunity",
                    "summary": "Join the talent community",
                    "description": "Accepted durably and answered at once. With a mail server configured, a sign-up is "
                    "`unconfirmed` until its person presses the button behind the link emailed to the "
                    "address (double opt-in: the API caller cannot confirm it), and removed if not "
                    "confirmed within 7 days; once confirmed, it is created in Lever when Lever can "
                    "take it.",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {"schema": _ref("TalentSignup")},
                            "multipart/form-data": {"schema": _ref("MultipartTalentSignup")},
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted: the receipt, and where to follow it.",
                            "content": {JSON: {"schema": _ref("Receipt")}},
                        },
                        "400": _error("Not a JSON object, or a filled honeypot field."),
                        "401": UNAUTHORIZED,
                        "404": _error("The talent community is switched off (JOBSITE_SOURCING)."),
                        "413": _error("Too large."),
                        "415": _error("Neither application/json nor multipart/form-data."),
                        "422": _error(
                            "Some answers need attention (`errors` per field), or the Idempotency-Key was "
                            "used for another sign-up."
                        ),
                        "429": _error(
                            "Too many submissions this hour from this address (or this integrator key).", "Retry-After"
                        ),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/talent/{receipt}": {
                "get": {
                    "operationId": "getTalentSignup",
                    "summary": "A sign-up's status, by its receipt",
                    "parameters": [receipt],
                    "responses": {
                        "200": {
                            "description": "Its status (no personal data).",
                            "content": {JSON: {"schema": _ref("TalentStatus")}},
                        },
                        "401": UNAUTHORIZED,
                        "404": _error("No sign-up with this receipt."),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/alerts": {
                "post": {
                    "operationId": "askForAlerts",
                    "summary": "Ask for job alerts for an email address",
                    "description": "Double opt-in: answered 202 at once whatever the address holds; one confirmation "
                    "email goes to the address (a few at most per address, however often asked), and "
                    "only the button behind its link starts the alerts. Every alert email can stop them "
                    "in one click. Limited per address (or integrator key) and for the whole site.",
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("AlertRequest")}}},
                    "responses": {
                        "202": {
                            "description": "Accepted: check the inbox.",
                            "content": {JSON: {"schema": _ref("AlertAccepted")}},
                        },
                        "400": _error("Not a JSON object."),
                        "401": UNAUTHORIZED,
                        "404": _error("The site sends no email (JOBSITE_SMTP_URL unset), so it offers no alerts."),
                        "413": _error("Too large."),
                        "415": _error("Not application/json."),
                        "422": _error("Some answers need attention (`errors` per field)."),
                        "429": _error(
                            "Too many requests for alerts this hour from this address (or this integrator "
                            "key), or for the whole site.",
                            "Retry-After",
                        ),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getContract",
                    "summary": "This document",
                    "security": [{}],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {"type": "object"}}}}
                    },
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "headers": HEADERS,
            "securitySchemes": {
                "integratorKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from `jobsite admin add-api-client NAME`, for servers only (browsers are "
                    "not allowed to send Authorization). A wrong or revoked key is a 401.",
                }
            },
        },
    }


def _example_posting() -> str | None:
    try:
        postings = get_services().catalog.postings().data
    except CatalogUnavailable:
        return None
    return postings[0]["id"] if postings else None


@bp.get("/api/v1/openapi.json")
def contract() -> Response:
    answer = jsonify(document(_example_posting()))
    answer.headers["Cache-Control"] = "public, max-age=300"
    return answer


def kind(schema: dict[str, Any]) -> Markup:
    """A schema in a few words for the page: a link to a named shape, `array of X`, `string or null`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return Markup(f'<a href="#schema-{escape(name)}">{escape(name)}</a>')  # noqa: S704 (its parts escaped)
    if "allOf" in schema:
        return Markup(" with ").join(kind(s) for s in schema["allOf"] if "$ref" in s)
    types = schema.get("type", "any")
    words = Markup(" or ").join(escape(t) for t in (types if isinstance(types, list) else [types]))
    if "items" in schema:
        words = Markup("array of ") + kind(schema["items"])
    if "properties" in schema and "$ref" not in schema:
        words = Markup("object: ") + Markup(", ").join(
            Markup("<code>%s</code> (%s)") % (name, kind(spec)) for name, spec in schema["properties"].items()
        )
    if "enum" in schema:
        words += Markup(": ") + Markup(", ").join(Markup("<code>%s</code>") % v for v in schema["enum"])
    return words


def fields(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """A schema's own properties (those of its parts too), with whether each is required."""
    parts = [schema, *(s for s in schema.get("allOf", []) if "properties" in s)]
    return [
        (name, spec, name in part.get("required", []))
        for part in parts
        for name, spec in part.get("properties", {}).items()
    ]


@bp.get("/api/")
def page() -> str:
    """The contract for people: each endpoint with its parameters, body and answers, and the shapes."""
    return render_template("api/index.html", doc=document(_example_posting()), kind=kind, fields=fields)
