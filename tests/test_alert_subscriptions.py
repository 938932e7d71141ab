"""The alert subscription store (jobsite/alerts/subscriptions.py): states, the indexed match against the job list's
rule, the caps a stranger meets, expiry and purge, signed links."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import redis

from jobsite.alerts import subscriptions as subs
from jobsite.alerts.subscriptions import Frequency, State
from jobsite.notify import links
from jobsite.postings import board
from jobsite.postings.posting import Posting, public_posting
from jobsite.settings import load_settings

DAY = 86400


def posting(
    n: int = 0,
    *,
    team: str | None = "Engineering",
    department: str | None = "Product",
    locations: tuple[str, ...] = ("Berlin",),
    commitment: str | None = "Full-time",
    workplace: str = "hybrid",
    title: str = "Backend Engineer",
    description: str = "Python services and Redis queues.",
) -> Posting:
    cats: dict[str, Any] = {
        "team": team,
        "department": department,
        "commitment": commitment,
        "allLocations": list(locations),
    }
    return public_posting(
        {
            "id": f"p{n}",
            "text": title,
            "categories": cats,
            "workplaceType": workplace,
            "content": {"description": description},
        }
    )


def confirmed(
    r: redis.Redis, email: str, frequency: str = "instant", language: str = "en", **filters: str
) -> subs.Subscription:
    asked = subs.subscribe(r, email, filters, frequency, language)
    found = subs.confirm(r, asked.subscription.id)
    assert found is not None
    assert found.state == State.CONFIRMED
    return found


def test_a_subscription_waits_for_its_confirmation_then_matches(r: redis.Redis) -> None:
    asked = subs.subscribe(r, " Ada@Example.com ", {"team": "Engineering", "q": "python", "bogus": "x"}, "daily", "de")
    sub = asked.subscription
    assert asked.new
    assert sub.state == State.PENDING
    assert sub.email == "Ada@Example.com"
    assert sub.filters == {"team": "Engineering", "q": "python"}
    assert sub.frequency == Frequency.DAILY
    assert sub.language == "de"
    assert sub.confirmed_at is None
    assert subs.get(r, sub.id) == sub
    assert list(subs.matching(r, posting())) == []  # pending: nothing goes
    done = subs.confirm(r, sub.id)
    assert done is not None
    assert done.state == State.CONFIRMED
    assert done.confirmed_at is not None
    assert subs.confirm(r, sub.id) == done  # a second press changes nothing
    assert list(subs.matching(r, posting())) == [sub.id]
    assert list(subs.matching(r, posting(team="Sales"))) == []
    assert list(subs.matching(r, posting(description="Go and Kafka"))) == []
    assert subs.counts(r) == {State.PENDING: 0, State.CONFIRMED: 1, State.STOPPED: 0, State.UNDELIVERABLE: 0}


@pytest.mark.parametrize(
    "bad", [{"email": "no-at-sign"}, {"email": "a@b.com\r\nBcc: x@y.com"}, {"frequency": "hourly"}, {"language": "es"}]
)
def test_unusable_input_is_refused_per_field(r: redis.Redis, bad: dict[str, str]) -> None:
    given = {"email": "ada@example.com", "frequency": "weekly", "language": "en", **bad}
    with pytest.raises(subs.Invalid) as e:
        subs.subscribe(r, given["email"], {}, given["frequency"], given["language"])
    assert set(e.value.errors) == set(bad)
    assert subs.counts(r)[State.PENDING] == 0


def test_asking_again_sends_no_second_email_and_a_stranger_is_capped(r: redis.Redis) -> None:
    first = subs.subscribe(r, "ada@example.com", {"team": "Engineering"}, "instant", "en")
    again = subs.subscribe(r, "ADA@example.com", {"team": "Engineering"}, "weekly", "fr")
    assert again.subscription.id == first.subscription.id
    assert not again.new
    assert again.subscription.frequency == Frequency.WEEKLY
    assert again.subscription.language == "fr"
    news = [subs.subscribe(r, "ada@example.com", {"q": f"word{i}"}, "daily", "en").new for i in range(10)]
    assert news.count(True) == subs.MAX_PENDING_PER_ADDRESS - 1  # three confirmation emails at most, then none
    assert len(subs.of_address(r, "ada@example.com")) == subs.MAX_PENDING_PER_ADDRESS
    # a confirmed one is not shown again as new, and its rhythm is its owner's to change (manage page), not a stranger's
    subs.confirm(r, first.subscription.id)
    same = subs.subscribe(r, "ada@example.com", {"team": "Engineering"}, "daily", "en")
    assert not same.new
    assert same.subscription.frequency == Frequency.WEEKLY


def test_the_match_is_the_job_lists_rule(r: redis.Redis) -> None:
    """Random filters against random postings: the indexed match finds exactly the subscriptions whose filters
    board.search would show the posting for."""
    rng = random.Random(31)
    teams, places = ["Engineering", "Sales", "Design"], ["Berlin", "Paris", "Remote - EU"]
    words = ["python", "py", "redis", "go", "sales", "désign", "engineer", "c++"]
    made = []
    for i in range(300):
        filters = {
            name: rng.choice(values)
            for name, values in (
                ("team", teams),
                ("location", places),
                ("department", ["Product", "Ops"]),
                ("commitment", ["Full-time", "Part-time"]),
                ("workplace", ["onsite", "remote", "hybrid"]),
                ("q", words),
            )
            if rng.random() < 0.3
        }
        if "q" in filters and rng.random() < 0.3:
            filters["q"] += " " + rng.choice(words)
        made.append(confirmed(r, f"p{i}@example.com", **filters))
    sizes = []
    for n in range(40):
        p = posting(
            n,
            team=rng.choice([*teams, None]),
            department=rng.choice(["Product", "Ops", None]),
            locations=tuple(rng.sample(places, rng.randint(0, 2))),
            commitment=rng.choice(["Full-time", "Part-time", None]),
            workplace=rng.choice(["onsite", "remote", "hybrid", "unspecified"]),
            title=rng.choice(["Python Engineer", "Sales Lead", "Designer"]),
            description=" ".join(rng.sample(words, 3)),
        )
        expected = sorted(s.id for s in made if board.search([p], board.Query(**s.filters)))
        assert sorted(subs.matching(r, p)) == expected
        sizes.append(len(expected))
    assert min(sizes) < max(sizes) < len(made)  # the draw tells subscriptions apart: neither none nor all match


def test_one_address_hears_of_a_job_once(r: redis.Redis) -> None:
    a = confirmed(r, "ada@example.com", team="Engineering")
    b = confirmed(r, "Ada@example.com", location="Berlin")
    assert list(subs.matching(r, posting())) == [min(a.id, b.id)]
    assert list(subs.matching(r, posting(team="Sales"))) == [b.id]


def test_changing_filters_moves_the_subscription_in_the_index(r: redis.Redis) -> None:
    sub = confirmed(r, "ada@example.com", q="python")
    changed = subs.change(r, sub.id, filters={"q": "kafka", "location": "Paris"}, frequency="weekly")
    assert changed is not None
    assert changed.frequency == Frequency.WEEKLY
    assert changed.state == State.CONFIRMED
    assert list(subs.matching(r, posting())) == []
    assert list(subs.matching(r, posting(locations=("Paris",), description="Kafka"))) == [sub.id]
    with pytest.raises(subs.Invalid):
        subs.change(r, sub.id, frequency="hourly")


def test_stopped_and_undeliverable_get_nothing(r: redis.Redis) -> None:
    ada = confirmed(r, "ada@example.com")
    ada2 = confirmed(r, "ada@example.com", team="Engineering")
    bob = confirmed(r, "bob@example.com")
    cleo = confirmed(r, "cleo@example.com")
    stopped = subs.stop(r, bob.id)
    assert stopped is not None
    assert stopped.state == State.STOPPED
    assert stopped.stopped_at is not None
    assert subs.change(r, bob.id, frequency="daily") == stopped  # an ended subscription stays ended
    assert subs.confirm(r, bob.id) == stopped
    subs.mark_undeliverable(r, ada.id)  # the address is refused: each of its subscriptions stops
    assert {s.state for s in subs.of_address(r, "ada@example.com")} == {State.UNDELIVERABLE}
    assert list(subs.matching(r, posting())) == [cleo.id]
    assert subs.counts(r) == {State.PENDING: 0, State.CONFIRMED: 1, State.STOPPED: 1, State.UNDELIVERABLE: 2}
    assert ada2.id in {s.id for s in subs.listing(r, State.UNDELIVERABLE)}


def test_unconfirmed_expire_and_ended_are_purged_on_schedule(r: redis.Redis) -> None:
    pending = subs.subscribe(r, "ada@example.com", {"q": "python"}, "instant", "en").subscription
    r.set("mail:" + subs.CONFIRM_MAIL.format(pending.id), "{}")
    kept = confirmed(r, "bob@example.com", q="python")
    ended = confirmed(r, "cleo@example.com", q="rust")
    subs.stop(r, ended.id)
    now = float(r.time()[0])
    assert subs.expire(r, now + DAY) == 0
    assert subs.expire(r, now + subs.EXPIRE_DAYS * DAY + 1) == 1
    assert subs.get(r, pending.id) is None
    assert not r.exists("mail:" + subs.CONFIRM_MAIL.format(pending.id))
    assert subs.of_address(r, "ada@example.com") == []
    assert subs.purge(r, now + DAY, keep_s=30 * DAY) == 0
    assert subs.purge(r, now + 31 * DAY, keep_s=30 * DAY) == 1
    assert subs.get(r, ended.id) is None
    assert subs.get(r, kept.id) is not None
    assert r.smembers(subs.QWORDS) == {b"python"}  # the purged one's anchor word is tidied
    assert not any(b"cleo" in r.dump(k) for k in r.keys("alert:*"))  # no trace of the address
    assert subs.counts(r) == {State.PENDING: 0, State.CONFIRMED: 1, State.STOPPED: 0, State.UNDELIVERABLE: 0}


def test_links_are_signed_per_purpose(tmp_path: Path) -> None:
    s = load_settings({}, data_dir=tmp_path, secret_key="k1", public_url="https://jobs.example.com")
    manage, stop, confirm = (subs.manage_url(s, "abc"), subs.unsubscribe_url(s, "abc"), subs.confirm_url(s, "abc"))
    assert stop.startswith("https://jobs.example.com/alerts/stop/abc/")
    assert manage.startswith("https://jobs.example.com/alerts/manage/abc/")
    assert subs.signed(s, "abc", manage.rsplit("/", 1)[1], "alert-manage")
    assert not subs.signed(s, "abc", manage.rsplit("/", 1)[1], "alert-stop")  # one purpose's link opens no other
    assert not subs.signed(s, "abd", stop.rsplit("/", 1)[1], "alert-stop")
    assert not subs.signed(
        load_settings({}, data_dir=tmp_path, secret_key="k2"), "abc", confirm.rsplit("/", 1)[1], "alert-confirm"
    )
    assert links.token(s, "abc", "alert-stop") == stop.rsplit("/", 1)[1]


def test_one_confirmed_as_it_expires_stays(r: redis.Redis) -> None:
    """expire reads the due ids, then removes each in a transaction that checks it is still pending: a person who
    confirms in between keeps the alert, whole (record, state, anchor)."""
    sub = subs.subscribe(r, "ada@example.com", {"team": "Engineering"}, "daily", "en").subscription
    due = [x.decode() for x in r.zrangebyscore(subs.STATE.format(State.PENDING), 0, "+inf")]
    subs.confirm(r, sub.id)  # between the read and the removal
    assert not any(subs._remove(r, sub_id, (State.PENDING,)) for sub_id in due)
    assert subs.get(r, sub.id).state == State.CONFIRMED
    assert list(subs.matching(r, posting())) == [sub.id]
    assert subs.counts(r)[State.CONFIRMED] == 1
