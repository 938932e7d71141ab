"""The API's contract: the OpenAPI document is valid, the page for people shows every endpoint, and the live app
keeps the contract under property-based tests (schemathesis): no 5xx, every answer as the document says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from jobsite.web import openapi

from .helpers import LiveServer, Sandbox

EXAMPLES = 15  # per operation and mode: enough to find a 5xx or a wrong shape, few enough to keep the suite fast


def test_the_document_is_valid_openapi_3_1_and_describes_every_api_route(app, client, sandbox: Sandbox) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    routes = {
        (rule.rule.replace("<", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
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
    for endpoint in (
        "GET /api/v1/postings",
        "POST /api/v1/postings/{posting_id}/applications",
        "GET /api/v1/applications/{receipt}",
        "POST /api/v1/autofill",
    ):
        assert endpoint in text
    assert "Idempotency-Key" in text
    assert "Retry-After" in text
    assert 'href="#schema-Posting"' in text


@pytest.mark.slow
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
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
                ran.append((case.operation.label, response.status_code))

            check()
    print("statuses seen:", sorted(set(ran)))
    assert {label for label, _ in ran} == {op.ok().label for op in schema.get_all_operations()}
    assert ("POST /api/v1/postings/{posting_id}/applications", 422) in ran  # past the 404, into validation
    assert ("GET /api/v1/postings/{posting_id}", 200) in ran


@pytest.mark.slow
def test_schemathesis_with_every_check_finds_nothing(live: LiveServer, sandbox: Sandbox, tmp_path: Path) -> None:
    """Issue 28, item 7: `schemathesis run -c all` found 4 schema-valid requests the API refused (positive data
    acceptance): an empty `resume`, `{}` as an application, an empty `application` part, an empty talent name, email
    and consent. The document now admits only what the API takes; tests/schemathesis.toml says which answers depend
    on what no schema can say (a file's content, a posting's form). About 10 to 25 s."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(Path(__file__).parent / "schemathesis.toml"),
            "run",
            f"{live.url}/api/v1/openapi.json",
            "-c",
            "all",
            "-n",
            "20",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )  # its .schemathesis/ too
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert "passed" in summary


def test_the_document_refuses_what_the_api_refuses(app) -> None:
    """The four bodies of issue 28 that the document admitted and the API refused are outside it now."""
    with app.test_request_context():
        doc = openapi.document("p1")
    schemas = doc["components"]["schemas"]
    autofill = doc["paths"]["/api/v1/autofill"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert autofill["properties"]["resume"]["minLength"] == 1  # an empty resume
    assert "personalInformation" in schemas["Application"]["required"]  # {} as an application
    assert schemas["MultipartApplication"]["properties"]["application"]["minLength"] >= 1  # an empty part
    for signup in (schemas["TalentSignup"], schemas["MultipartTalentSignup"]):
        assert set(signup["required"]) >= {"name", "email", "consent"}
        assert signup["properties"]["name"]["minLength"] == 1
        assert signup["properties"]["email"].get("format") == "email"
    assert True not in schemas["MultipartTalentSignup"]["properties"]["consent"]["enum"]  # a form sends text
