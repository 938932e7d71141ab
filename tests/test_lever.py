"""The Lever client against the sandbox, over HTTP."""

from __future__ import annotations

import pytest

from jobsite.lever.client import (
    LeverAuthError,
    LeverClient,
    LeverConnectionError,
    LeverRateLimited,
    LeverRejected,
    LeverUnavailable,
)

from .helpers import Sandbox, application_body, free_port, odd_posting


def test_list_postings_follows_every_page(lever: LeverClient, sandbox: Sandbox) -> None:
    pages = list(lever.iter_posting_pages(limit=7))
    assert len(pages) == 6
    assert [len(p) for p in pages] == [7, 7, 7, 7, 7, 1]
    ids = [p["id"] for page in pages for p in page]
    assert sorted(ids) == sorted(sandbox.state.postings)
    assert len(set(ids)) == 36
    assert sandbox.count("postings.list") == 6


def test_published_public_postings_only(lever: LeverClient, sandbox: Sandbox) -> None:
    postings = lever.list_postings(state="published")
    assert len(postings) == 30 == len(sandbox.public_postings())
    assert all(p["state"] == "published" and "public" in p["distributionChannels"] for p in postings)


def test_posting_and_questions(lever: LeverClient, sandbox: Sandbox) -> None:
    pid = next(iter(sandbox.state.postings))
    assert lever.get_posting(pid)["text"] == sandbox.state.postings[pid]["text"]
    form = lever.get_application_questions(pid)
    assert form["personalInformation"][0]["name"] == "fullName"
    with pytest.raises(LeverRejected) as e:
        lever.get_posting("00000000-0000-4000-8000-000000000000")
    assert e.value.status == 404
    assert "doesn't exist" in e.value.message


def test_apply_and_find_the_opportunity(lever: LeverClient, sandbox: Sandbox) -> None:
    pid = odd_posting(sandbox)
    app_id = lever.apply(pid, application_body(sandbox, pid))
    opps = lever.list_opportunities(email="ADA@example.com", posting_id=pid, expand="applications")
    assert [o["applications"][0]["id"] for o in opps] == [app_id]


def test_upload_returns_a_uri_usable_in_an_application(lever: LeverClient, sandbox: Sandbox) -> None:
    upload = lever.upload_file("cv.pdf", b"%PDF-1.4 test", "application/pdf")
    assert "/v1/uploads/" in upload.uri
    assert upload.expires_at_ms > 0
    pid = odd_posting(sandbox)
    body = application_body(sandbox, pid)
    body["personalInformation"].append({"name": "resume", "value": upload.uri})
    assert lever.apply(pid, body)


def test_maintenance_mode_is_503_except_the_postings_reads(lever: LeverClient, sandbox: Sandbox) -> None:
    sandbox.control("maintenance", on=True)
    pid = odd_posting(sandbox)
    assert lever.list_postings()
    assert lever.get_posting(pid)
    assert lever.get_application_questions(pid)
    with pytest.raises(LeverUnavailable) as e:
        lever.apply(pid, application_body(sandbox, pid))
    assert e.value.status == 503
    with pytest.raises(LeverUnavailable):
        lever.list_opportunities(email="ada@example.com")
    with pytest.raises(LeverUnavailable):
        lever.upload_file("cv.txt", b"hello", "text/plain")
    assert sandbox.received()["applications"] == []


def test_stages_are_a_light_read_that_maintenance_blocks_and_a_key_may_lack(
    lever: LeverClient, sandbox: Sandbox
) -> None:
    stages = lever.read_stages(limit=1)
    assert [s.text for s in stages] == ["New lead"]
    assert stages[0].id == "lead-new"
    assert [s.text for s in lever.read_stages()][-1] == "Offer"
    sandbox.control("maintenance", on=True)
    with pytest.raises(LeverUnavailable) as e:
        lever.read_stages(limit=1)
    assert e.value.status == 503
    assert e.value.body["code"] == "ServiceUnavailableError"
    sandbox.control("forbid", endpoints=["stages"])
    with pytest.raises(LeverAuthError) as refused:
        lever.read_stages(limit=1)
    assert refused.value.status == 403
    assert [(q["endpoint"], q["status"]) for q in sandbox.received()["requests"]] == [
        ("stages.list", 200),
        ("stages.list", 200),
        ("stages.list", 503),
        ("stages.list", 403),
    ]


@pytest.mark.parametrize("retry_after", [True, False])
def test_429_above_the_apply_limit(lever: LeverClient, sandbox: Sandbox, retry_after: bool) -> None:
    sandbox.control("limits", apply_per_s=2, apply_burst=2, retry_after=retry_after)
    pid = odd_posting(sandbox)
    lever.apply(pid, application_body(sandbox, pid, "a@example.com"))
    lever.apply(pid, application_body(sandbox, pid, "b@example.com"))
    with pytest.raises(LeverRateLimited) as e:
        lever.apply(pid, application_body(sandbox, pid, "c@example.com"))
    assert e.value.status == 429
    assert (e.value.retry_after is not None) == retry_after
    assert len(sandbox.received()["applications"]) == 2


def test_window_mode_refuses_a_third_apply_in_any_second_without_retry_after(
    lever: LeverClient, sandbox: Sandbox
) -> None:
    assert sandbox.control("limits", mode="window")["mode"] == "window"  # Lever's numbers: 2 applies, 10 calls
    pid = odd_posting(sandbox)
    lever.apply(pid, application_body(sandbox, pid, "a@example.com"))
    lever.apply(pid, application_body(sandbox, pid, "b@example.com"))
    with pytest.raises(LeverRateLimited) as e:
        lever.apply(pid, application_body(sandbox, pid, "c@example.com"))
    assert e.value.status == 429
    assert e.value.retry_after is None
    assert len(sandbox.received()["applications"]) == 2


def test_window_mode_counts_arrivals_in_any_sliding_second() -> None:
    from jobsite.sandbox import SandboxState

    st = SandboxState()
    st.switches.mode = "window"
    st.reset_buckets()
    assert [st.take("postings.apply", t) for t in (0.0, 0.6)] == [0.0, 0.0]
    assert st.take("postings.apply", 0.99) == pytest.approx(0.01)  # a third within 1 s of the first
    assert st.take("postings.apply", 1.0) == 0.0  # the first left the window; the refused one never counted
    assert st.take("postings.apply", 1.5) == pytest.approx(0.1)  # 0.6 and 1.0 are still within 1 s
    assert [st.take("postings.get", 2.0 + i / 100) for i in range(10)] == [0.0] * 10  # all calls: 10 in 1 s
    assert st.take("postings.get", 2.095) == pytest.approx(0.905)
    assert st.take("postings.apply", 2.5) == pytest.approx(0.5)  # an apply is a call too
    assert st.take("postings.apply", 3.0) == 0.0


def test_a_rejected_application_carries_levers_message(lever: LeverClient, sandbox: Sandbox) -> None:
    pid = odd_posting(sandbox)
    sandbox.control(f"postings/{pid}", state="closed")
    with pytest.raises(LeverRejected) as e:
        lever.apply(pid, application_body(sandbox, pid))
    assert e.value.status == 400
    assert e.value.message == "This posting is not accepting applications"


def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(sandbox: Sandbox) -> None:
    client = LeverClient(base_url=f"{sandbox.url}/v1", api_key="sk_wrong_secret_key", timeout=(1, 5))
    with pytest.raises(LeverAuthError) as e:
        client.list_postings()
    assert e.value.status == 401
    assert "sk_wrong_secret_key" not in f"{e.value!r} {e.value} {e.value.body} {client!r}"


def test_a_dropped_connection_after_apply_is_an_unknown_outcome(lever: LeverClient, sandbox: Sandbox) -> None:
    sandbox.control("drop", path="/apply", count=1)
    pid = odd_posting(sandbox)
    with pytest.raises(LeverConnectionError) as e:
        lever.apply(pid, application_body(sandbox, pid))
    assert e.value.outcome_unknown is True
    assert len(sandbox.received()["applications"]) == 1  # Lever did process it


def test_a_read_timeout_on_a_post_is_an_unknown_outcome(sandbox: Sandbox) -> None:
    client = LeverClient(base_url=f"{sandbox.url}/v1", api_key="sandbox-key", timeout=(1, 0.3))
    sandbox.control("latency", seconds=1.0, path="/apply")
    pid = odd_posting(sandbox)
    with pytest.raises(LeverConnectionError) as e:
        client.apply(pid, application_body(sandbox, pid))
    assert e.value.outcome_unknown is True


def test_a_refused_connection_was_never_sent() -> None:
    client = LeverClient(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k", timeout=(1, 1))
    with pytest.raises(LeverConnectionError) as e:
        client.apply("abc", {})
    assert e.value.outcome_unknown is False


def test_injected_server_error_is_unavailable(lever: LeverClient, sandbox: Sandbox) -> None:
    sandbox.control("fail", path="/postings", status=500, count=1, message="boom")
    with pytest.raises(LeverUnavailable) as e:
        lever.list_postings()
    assert e.value.status == 500
    assert e.value.message == "boom"
    assert lever.list_postings()


def test_a_person_can_flip_maintenance_in_a_browser(sandbox: Sandbox) -> None:
    import requests

    page = requests.get(f"{sandbox.url}/_sandbox/", headers={"Accept": "text/html"}, timeout=5)
    assert "Switch maintenance mode on" in page.text
    flipped = requests.post(
        f"{sandbox.url}/_sandbox/maintenance", data={"on": "on"}, headers={"Accept": "text/html"}, timeout=5
    )
    assert flipped.ok
    assert "Switch maintenance mode off" in flipped.text
    assert requests.get(f"{sandbox.url}/_sandbox/", timeout=5).json()["maintenance"] is True


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        # Chromium's real Accept header for a page it navigates to (Werkzeug's `best` picks signed-exchange from it)
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
            "application/signed-exchange;v=b3;q=0.7",
            True,
        ),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Firefox
        ("*/*", False),  # curl, requests
        ("application/json", False),
        ("application/json, text/html;q=0.5", False),
    ],
)
def test_the_control_page_is_html_for_browsers_and_json_for_scripts(sandbox: Sandbox, accept: str, page: bool) -> None:
    import requests

    answer = requests.get(f"{sandbox.url}/_sandbox/", headers={"Accept": accept}, timeout=5)
    assert answer.headers["Content-Type"].startswith("text/html" if page else "application/json")
    assert ("Switch maintenance mode on" in answer.text) is page
