"""Finding a person in the console and on the command line: by the reference they read out (any case, dash or not),
an exact email or a name's words; applications and sourced people alike; records stored before the index existed
too; nothing found by what retention removed; no personal data in the index's key names."""

from __future__ import annotations

import pytest
import redis
from click.testing import CliRunner

from jobsite import cli
from jobsite.console import accounts
from jobsite.privacy import applications as retention
from jobsite.privacy import lookup
from jobsite.records import search, store
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import people

from .helpers import ADMIN, Sandbox, lever_body, sign_in, simple_posting


def apply(client, sandbox: Sandbox, name: str, email: str) -> str:
    posting = simple_posting(sandbox)
    body = lever_body(sandbox, posting["id"])
    body["personalInformation"] = [{"name": "fullName", "value": name}, {"name": "email", "value": email}]
    answer = client.post(f"/api/v1/postings/{posting['id']}/applications", json=body)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["receipt"]


def join(client, sandbox: Sandbox, name: str, email: str) -> str:
    team = sandbox.public_postings()[0]["categories"]["team"]
    answer = client.post(
        "/api/v1/talent",
        json={
            "name": name,
            "email": email,
            "consent": {"store": True},
            "interests": {"teams": [team], "locations": []},
        },
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["receipt"]


def found(client, q: str) -> str:
    answer = client.get("/admin/search", query_string={"q": q})
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


@pytest.fixture
def signed_in(client, r: redis.Redis) -> None:
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)


def test_the_search_box_finds_a_reference_an_email_and_a_name(
    client, r: redis.Redis, sandbox: Sandbox, signed_in
) -> None:
    ada = apply(client, sandbox, "Ada Lovelace-Byron", "Ada.Lovelace@example.com")
    apply(client, sandbox, "Charles Babbage", "charles@example.com")
    lena = join(client, sandbox, "Léna Fischer", "lena@example.com")
    ref = store.reference(ada)
    for q in (
        ref,
        ref.replace("-", ""),
        ref.lower(),
        f" {ref[:4]} {ref[5:]} ",
        "ada.lovelace@EXAMPLE.com",
        "lovelace",
        "BYRON ada",
        ada,
    ):
        page = found(client, q)
        assert f"/admin/applications/{ada}" in page, q
        assert "Charles" not in page, q
        assert "1 application and 0 sourced people match" in page, q
    for q in ("lena fischer", "Fischer", store.reference(lena), "lena@example.com"):
        page = found(client, q)
        assert "Léna Fischer" in page, q
        assert store.reference(lena) in page, q
        assert "0 applications and 1 sourced person match" in page, q
    assert "Nothing matches" in found(client, "ada@example")  # an email is found whole
    assert "Nothing matches" in found(client, "Lovelac")  # a name by its whole words
    assert "Nothing matches" in found(client, "Ada Babbage")  # every word
    assert store.reference(ada) in client.get("/admin/applications").get_data(as_text=True)
    assert store.reference(ada) in client.get(f"/admin/applications/{ada}").get_data(as_text=True)
    assert client.get("/admin/search?q=x").status_code == 200
    names = b" ".join(r.keys("search:*"))
    for personal in (b"ada", b"lovelace", b"example", b"fischer"):
        assert personal not in names.lower()


def test_records_stored_before_the_index_are_found_and_retention_empties_it(
    client, r: redis.Redis, sandbox: Sandbox, settings: Settings, signed_in
) -> None:
    ada = apply(client, sandbox, "Ada Lovelace", "ada@example.com")
    grace = join(client, sandbox, "Grace Hopper", "grace@example.com")
    r.delete(*r.keys("search:*"))  # as stored by a version without the index
    assert f"/admin/applications/{ada}" in found(client, "ada lovelace")
    assert "Grace Hopper" in found(client, "grace@example.com")
    more = [apply(client, sandbox, f"Old Record {n}", f"old{n}@example.com") for n in range(3)]
    r.delete(*r.keys("search:*"))
    step = lookup.find(r, "old record", build_budget_s=0)  # a batch at a time: no search waits for a whole store
    assert not step.complete
    assert lookup.find(r, "old record", build_budget_s=0).complete  # the next search goes on from there
    assert {rec.receipt for rec in lookup.find(r, "old record").applications} == set(more)
    svc = Services(settings)
    store.update(r, store.load(r, ada), store.State.DELIVERED, delivered_at=1.0)
    retention.purge(svc.redis, svc.settings.retention_days)
    with r.pipeline() as pipe:
        people.purge_personal_data(r, people.load(r, grace), pipe)  # type: ignore[arg-type]
        pipe.execute()
    assert "Nothing matches" in found(client, "ada lovelace")
    assert "Nothing matches" in found(client, "grace@example.com")
    assert "(personal data removed)" in found(client, store.reference(ada))  # the reference is not personal
    for member in (f"application:{ada}", f"person:{grace}"):  # in the index by its reference alone
        assert [k.split(b":")[1] for k in r.smembers(search.OF.format(member))] == [b"ref"]
        assert [k for k in r.scan_iter("search:[ew]*") if r.zscore(k, member) is not None] == []


def test_jobsite_admin_find_prints_one_match_a_line_with_its_receipt(
    client, r: redis.Redis, sandbox: Sandbox, settings: Settings, monkeypatch
) -> None:
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("JOBSITE_DATA_DIR", str(settings.data_dir))
    first = apply(client, sandbox, "Ada Lovelace", "ada@example.com")
    second = apply(client, sandbox, "Ada Lovelace", "ada@example.com")
    lena = join(client, sandbox, "Ada Fischer", "ada.f@example.com")
    answer = CliRunner().invoke(cli.main, ["admin", "find", "ada"])
    assert answer.exit_code == 0, answer.output
    lines = answer.output.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].split()[:3] == ["application", second, store.reference(second)]  # newest first
    assert lines[1].split()[:3] == ["application", first, store.reference(first)]
    assert lines[2].split()[:3] == ["person", lena, store.reference(lena)]
    one = CliRunner().invoke(cli.main, ["admin", "find", store.reference(first).lower().replace("-", "")])
    assert one.output.strip().splitlines() == [lines[1]]
    none = CliRunner().invoke(cli.main, ["admin", "find", "nobody@example.com"])
    assert none.exit_code == 1
    assert "nothing matches" in none.output
    assert search.find(r, "ADA") == search.find(r, "ada")
