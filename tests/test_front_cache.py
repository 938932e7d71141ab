"""The cache in front of the app (web/pages.py `FrontCache`): cached pages served without Flask, byte for byte and
header for header as Flask answers them, per language, embedding and theme; never a private page or a cookie; a
304 for a matching If-None-Match; new pages as soon as the postings change; and bounded memory."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from jobsite.services import get_services
from jobsite.web.pages import PUBLIC_CACHE, FrontCache
from tests.helpers import simple_posting

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Request-Id")


def reaching_flask(app: Flask, client: Any) -> list[str]:
    """The requests that get past the front cache to Flask's routing, after one that has the postings read (the
    front cache keys on their version, so a process's very first page is rendered and not kept)."""
    seen: list[str] = []

    def count() -> None:
        seen.append(request.full_path)

    app.before_request(count)
    client.get("/jobs/none")
    seen.clear()
    return seen


def headers_of(response: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.items() if k != "X-Request-Id"]


def test_a_cached_page_is_served_without_flask_with_the_same_bytes_and_headers(app, client) -> None:
    flask_saw = reaching_flask(app, client)
    first = client.get("/?team=Engineering")
    second = client.get("/?team=Engineering")
    assert len(flask_saw) == 1, "the second request was rendered again"
    assert first.status_code == second.status_code == 200
    assert second.data == first.data
    assert headers_of(second) == headers_of(first)
    assert all(name in second.headers for name in SECURITY_HEADERS)
    assert second.headers["Cache-Control"] == PUBLIC_CACHE
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]  # each answer has its own
    assert client.get("/", headers={"X-Request-Id": "mine-1"}).headers["X-Request-Id"] == "mine-1"
    head = client.head("/?team=Engineering")
    assert len(flask_saw) == 2
    assert head.data == b""
    assert headers_of(head) == headers_of(first)


def test_cached_pages_are_kept_apart_by_language_embedding_and_theme(app, client) -> None:
    flask_saw = reaching_flask(app, client)
    german = client.get("/", headers={"Accept-Language": "de"})
    french = client.get("/", headers={"Accept-Language": "fr-CH, fr;q=0.9"})
    assert 'lang="de"' in german.get_data(as_text=True)
    assert 'lang="fr"' in french.get_data(as_text=True)
    assert "Accept-Language" in german.headers["Vary"]
    assert len(flask_saw) == 2
    # another header that negotiates the same language is the same page, from the cache
    again = client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert again.data == german.data
    assert len(flask_saw) == 2
    chosen = client.get("/?lang=fr", headers={"Accept-Language": "de"})
    assert 'lang="fr"' in chosen.get_data(as_text=True)
    assert len(flask_saw) == 3
    plain, embedded = client.get("/"), client.get("/?embed=1")
    themed = client.get("/?embed=1&accent=8a1c7c&background=ffffff&text=222222")
    assert len(flask_saw) == 6
    assert len({plain.data, embedded.data, themed.data}) == 3
    assert "/embed.css" in themed.get_data(as_text=True)
    assert client.get("/?embed=1").data == embedded.data
    assert len(flask_saw) == 6


def test_private_pages_and_cookies_are_never_kept(app, client) -> None:
    @app.get("/with-cookie")
    def with_cookie() -> Response:
        answer = Response("hello")
        answer.headers["Cache-Control"] = PUBLIC_CACHE
        answer.set_cookie("visitor", "1")
        return answer

    flask_saw = reaching_flask(app, client)
    for _ in range(2):
        referred = client.get("/", headers={"Referer": "https://elsewhere.example/jobs"})
        assert referred.headers["Cache-Control"].startswith("private")
        assert "ref=elsewhere.example" in referred.get_data(as_text=True)
    assert len(flask_saw) == 2
    assert "elsewhere.example" not in client.get("/").get_data(as_text=True)  # and not kept for the next visitor
    # the cached page goes to visitors coming from within the site and to pages embedded in another
    client.get("/?embed=1")
    client.get("/", headers={"Referer": "http://localhost/jobs/x"})
    client.get("/?embed=1", headers={"Referer": "https://elsewhere.example/"})
    assert len(flask_saw) == 4
    assert [client.get("/with-cookie").headers["Set-Cookie"] for _ in range(2)] == ["visitor=1; Path=/"] * 2
    assert len(flask_saw) == 6
    client.get("/", headers={"Authorization": "Bearer not-a-key"})  # an API key is checked (and audited) each time
    assert len(flask_saw) == 7


def test_a_matching_if_none_match_gets_a_304_from_the_cache(app, client) -> None:
    flask_saw = reaching_flask(app, client)
    page = client.get("/")
    etag = page.headers["ETag"]
    for asked in (etag, f'"other", W/{etag}', "*"):
        unchanged = client.get("/", headers={"If-None-Match": asked})
        assert unchanged.status_code == 304
        assert unchanged.data == b""
        assert unchanged.headers["ETag"] == etag
        assert unchanged.headers["Cache-Control"] == PUBLIC_CACHE
        assert all(name in unchanged.headers for name in SECURITY_HEADERS)
    assert client.get("/", headers={"If-None-Match": '"other"'}).data == page.data
    assert len(flask_saw) == 1


def test_new_postings_are_shown_at_once(app, client, sandbox) -> None:
    posting = simple_posting(sandbox)
    assert posting["text"] in client.get("/").get_data(as_text=True)
    sandbox.state.postings[posting["id"]]["text"] = "Lighthouse keeper"
    assert "Lighthouse keeper" not in client.get("/").get_data(as_text=True)
    with app.app_context():
        get_services().catalog.refresh_postings()
    assert "Lighthouse keeper" in client.get("/").get_data(as_text=True)


def test_the_cache_stays_within_its_bounds() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["PATH_INFO"].encode() * 100
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "public, max-age=60"),
                ("Vary", "Accept-Language"),
            ],
        )
        return [body]

    cache = FrontCache(app, lambda: "v1", bypass=lambda environ: False, max_entries=10, max_bytes=5_000)
    for n in range(100):
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"/page/{n}",
            "wsgi.url_scheme": "http",
            "HTTP_ACCEPT_LANGUAGE": str(n % 3),
        }
        assert cache(environ, lambda status, headers, exc_info=None: None) == [environ["PATH_INFO"].encode() * 100]
        assert len(cache.entries) <= 10
        assert cache.size <= 5_000
        assert len(cache.varies) <= 10
    assert cache.size == sum(len(e.body) for e in cache.entries.values()) > 0
