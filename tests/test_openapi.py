"""The API's contract: the OpenAPI document is valid, the page for people shows every endpoint, and the live app
keeps the contract under property-based tests (schemathesis): no 5xx, every answer as the document says."""

from __future__ import annotations

import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from .helpers import LiveServer, Sandbox

EXAMPLES = 15  # per operation and mode: enough to find a 5xx or a wrong shape, few enough to keep the suite fast


def test_the_document_is_valid_openapi_3_1_and_describes_every_api_route(app, client, sandbox: Sandbox) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    routes = {(rule.rule.replace("<", "{").replace(">", "}"), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    apply = doc["paths"]["/api/v1/postings/{posting_id}/applications"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in apply["parameters"]]
    assert apply["responses"]["429"]["headers"]["Retry-After"]
    assert doc["paths"]["/api/v1/postings"]["get"]["responses"]["200"]["headers"]["ETag"]
    assert set(doc["components"]["headers"]) >= {"ETag", "Retry-After"}
    published = {p["id"] for p in sandbox.public_postings()}
    assert apply["parameters"][0]["example"] in published  # examples are real postings


def test_the_api_page_is_rendered_from_the_document(client, sandbox: Sandbox) -> None:
    page = client.get("/api/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<script" not in text
    assert "https://cdn" not in text
    for endpoint in ("GET /api/v1/postings", "POST /api/v1/postings/{posting_id}/applications",
                     "GET /api/v1/applications/{receipt}", "POST /api/v1/autofill"):
        assert endpoint in text
    assert "Idempotency-Key" in text
    assert "Retry-After" in text
    assert 'href="#schema-Posting"' in text


def test_the_live_app_keeps_the_contract(live: LiveServer, r: redis.Redis, sandbox: Sandbox) -> None:
    """Schemathesis generates requests from the document for every operation (valid ones, and invalid ones for the
    application endpoint) and checks each answer: never a 5xx, status, headers and body as documented. Bounded to a
    few examples per operation so the suite stays fast; the posting examples are real, so applications get through
    to validation and acceptance, not only to 404. Which answers a posting requires is its form's business (GET
    /api/v1/postings/{id}), not the document's, so a schema-valid application may rightly get a 422."""
    schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
    modes = {"apply": [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]}
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes.get(operation.definition.raw.get("operationId", ""), [GenerationMode.POSITIVE]):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
                ran.append((case.operation.label, response.status_code))

            check()
    print("statuses seen:", sorted(set(ran)))
    assert {label for label, _ in ran} == {op.ok().label for op in schema.get_all_operations()}
    assert ("POST /api/v1/postings/{posting_id}/applications", 422) in ran  # past the 404, into validation
    assert ("GET /api/v1/postings/{posting_id}", 200) in ran
