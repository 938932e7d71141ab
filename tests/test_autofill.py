"""POST /api/v1/autofill: a resume's name, email, phone and links from PDF, DOCX, ODT and text, read in memory and
forgotten, limited per address like applications, and bounded against hostile files as uploads are."""

from __future__ import annotations

import io
import resource
import time
import zipfile
import zlib

import pytest
import redis
import requests

from jobsite.console import api_keys
from jobsite.intake import resume
from jobsite.settings import Settings, load_settings
from jobsite.web.app import create_app

from .helpers import (
    RESUME,
    RESUME_LINES,
    LiveServer,
    docx_bomb,
    docx_empty_paragraphs,
    docx_huge_parts,
    odt_nested,
    resume_docx,
    resume_odt,
    resume_pdf,
)

URL = "/api/v1/autofill"


def send(client, content: bytes, name: str = "cv.pdf"):
    """The answer, read and closed: closing it closes the request body the test client spooled to a file."""
    answer = client.post(URL, data={"resume": (io.BytesIO(content), name)}, content_type="multipart/form-data")
    answer.get_data()
    answer.close()
    return answer


@pytest.mark.parametrize(
    "build",
    [resume_pdf, resume_docx, resume_odt, lambda: "\n".join(RESUME_LINES).encode()],
    ids=["pdf", "docx", "odt", "txt"],
)
def test_a_resume_gives_name_email_phone_and_links_and_nothing_is_stored(client, r: redis.Redis, build) -> None:
    answer = send(client, build())
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found = answer.get_json()
    keys = ("fullName", "email", "phone", "currentCompany", "currentLocation")  # company and location as they stand
    assert {k: found.get(k) for k in keys} == {k: RESUME[k] for k in keys}
    assert "2019 - 2023" not in found["phone"]
    assert "2023-01-15" not in found["phone"]
    assert set(found["urls"]) - {"https://github.com/ada"} == {"https://linkedin.com/in/ada-lovelace"}
    stored = {k.decode() for k in r.keys("*")}  # the per-address count of resumes read, and nothing of the resume
    assert stored, stored
    assert all(k.startswith("quota:autofill:") for k in stored), stored


def test_links_in_documents_are_found_and_absent_fields_are_left_out(client) -> None:
    for build in (resume_pdf, resume_docx, resume_odt):
        assert "https://github.com/ada" in send(client, build()).get_json()["urls"], build.__name__  # a hyperlink
    assert send(client, b"Grace Hopper\nNavy, Arlington\n").get_json() == {"fullName": "Grace Hopper"}
    assert send(client, b"Curriculum Vitae\n2020-01-15 started\nmailto: none\n").get_json() == {}


def test_a_resume_over_the_file_limit_is_a_413(settings: Settings, live: LiveServer) -> None:
    big = b"a" * (settings.max_file_mb * 2**20 + 1)  # over the live server: the test client leaks its spooled body
    too_big = requests.post(live.url + URL, files={"resume": ("cv.txt", big)}, timeout=30)
    assert too_big.status_code == 413
    assert "under" in too_big.json()["message"]


def test_bad_and_hostile_files_get_clear_errors_quickly(client) -> None:
    assert send(client, b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "me.png").status_code == 415
    assert send(client, b"{\\rtf1 Ada Lovelace}", "cv.rtf").status_code == 415  # an upload Lever takes, unread here
    assert client.post(URL, json={"resume": "x"}).status_code == 400
    # a docx whose document.xml inflates to 50 MB: refused before anything is inflated (records/filetypes.py)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", b"<x/>")
        z.writestr("word/document.xml", b"\0" * (50 * 2**20))
    # a PDF whose page content inflates to 300 MB (about 300 KB on the wire): pypdf stops at its limit
    squeeze = zlib.compressobj(9)
    stream = b"".join(squeeze.compress(b" " * 2**20) for _ in range(300)) + squeeze.flush()
    pdf = resume_pdf(1).replace(b"/Length", b"/Filter /FlateDecode /Length", 1)
    start = pdf.index(b"stream\n", pdf.index(b"/Filter")) + 7
    end = pdf.index(b"\nendstream", start)
    pdf = pdf[:start] + stream + pdf[end:]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    assert send(client, bomb.getvalue(), "cv.docx").status_code == 415
    assert send(client, pdf).status_code in (200, 415, 422)  # at worst unread, never a stack trace
    assert time.monotonic() - started < 20  # generous: the point is that nothing hangs
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 400 * 1024  # KiB


def test_autofill_is_limited_per_address(settings: Settings, r: redis.Redis) -> None:
    client = create_app(load_settings({}, **{**settings.__dict__, "submissions_per_ip_per_hour": 2})).test_client()
    codes = [send(client, b"Ada Lovelace\n", "cv.txt").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert r.keys("submissions:ip:*") == []  # its own count: reading resumes never uses up applications


def test_a_broken_docx_is_a_422_not_a_500(client) -> None:
    """Issue 28, item 1: lxml's and python-docx's own errors were not caught (a 500 with a traceback)."""
    for parts in (
        {"word/document.xml": b"<w:document><unclosed>"},
        {"word/_rels/document.xml.rels": b"<"},
        {"[Content_Types].xml": b"<Types/>"},
    ):
        answer = send(client, docx_bomb(parts), "cv.docx")
        assert answer.status_code == 422, (parts, answer.get_data(as_text=True))
        assert "fill in the form yourself" in answer.get_json()["message"]


@pytest.mark.parametrize(
    "bomb",
    [odt_nested, docx_huge_parts, docx_empty_paragraphs],
    ids=["odt-nested", "docx-huge-parts", "docx-empty-paragraphs"],
)
def test_xml_too_deep_too_many_or_too_large_is_refused_before_a_tree_is_built(bomb) -> None:
    """The structural bounds, in the child: 10,000 nested paragraphs, 36 MB of styles, numbering and settings, 1.2
    million empty paragraphs. Refused in well under the child's limits (a tree was never built)."""
    started = time.monotonic()
    with pytest.raises(resume.Broken):
        resume.read(bomb())
    assert time.monotonic() - started < resume.LIMITS.wall_s


def test_a_deep_but_bounded_odt_is_read(client) -> None:
    """Paragraphs nested as deep as the bound allows are still read, each as its own line, in linear work."""
    found = send(client, odt_nested(resume.MAX_XML_DEPTH - 5), "cv.odt")
    assert found.status_code == 200
    assert found.get_json() == {}


def test_an_integrator_key_counts_autofill_against_its_own_quota(settings: Settings, r: redis.Redis) -> None:
    """Issue 28, item 1: with a key, autofill had no limit at all and was not counted (40 of 40 answered)."""
    key = api_keys.add(r, "acme-backend")
    limited = create_app(load_settings({}, **{**settings.__dict__, "api_client_per_hour": 2})).test_client()
    bearer = {"Authorization": f"Bearer {key}"}
    codes = [
        limited.post(
            URL,
            data={"resume": (io.BytesIO(b"Ada Lovelace\n"), "cv.txt")},
            headers=bearer,
            content_type="multipart/form-data",
        ).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    assert r.keys("quota:apiclient:*") == []  # its own count: reading resumes never uses up its applications
