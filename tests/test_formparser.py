"""Multipart bodies parsed by `multipart` (jobsite/web/formparser.py): what werkzeug's parser gave, its limits (and
where it is stricter), and bodies an attacker shapes."""

from __future__ import annotations

import gc
import io
import json

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser as WerkzeugParser

from jobsite.web.formparser import FormDataParser

from .helpers import Sandbox, file_posting, lever_body

BOUNDARY = "b0undary"


def body(*parts: bytes) -> bytes:
    return (
        b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + p + b"\r\n" for p in parts)
        + b"--"
        + BOUNDARY.encode()
        + b"--\r\n"
    )


def field(name: str, value: bytes, extra: bytes = b"") -> bytes:
    return b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n' + extra + b"\r\n" + value


def file_part(name: str, filename: bytes, content: bytes) -> bytes:
    return (
        b'Content-Disposition: form-data; name="'
        + name.encode()
        + b'"; filename="'
        + filename
        + b'"\r\nContent-Type: application/pdf\r\n\r\n'
        + content
    )


def parse(parser_class, data: bytes, **limits):
    """Fields and files (read, their streams closed) as (name, filename, content type, bytes)."""
    parser = parser_class(**limits)
    _, form, files = parser.parse(io.BytesIO(data), "multipart/form-data", len(data), {"boundary": BOUNDARY})
    read = []
    for name, f in files.items(multi=True):
        read.append((name, f.filename, f.content_type, f.read(), type(f.stream)))
        f.close()
    return form, read


@pytest.mark.parametrize(
    "data",
    [
        body(field("a", b"1"), field("a", b"2"), field("b", "é ü €".encode())),
        body(
            field("application", b'{"name": "A"}'),
            file_part("resume", b"cv.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 800),
        ),
        body(file_part("resume", "Lebenslauf Müller.pdf".encode(), b"%PDF")),
        body(field("latin", "café".encode("latin-1"), b"Content-Type: text/plain; charset=iso-8859-1\r\n")),
        body(field("odd", "café".encode(), b"Content-Type: text/plain; charset=koi8-r\r\n")),
        body(field("empty", b""), file_part("nothing", b"", b"")),
        body(field("crlf", b"line one\r\nline two\r\n--not the boundary")),
        body(b"Content-Disposition: form-data; name=\"resume\"; filename*=UTF-8''M%C3%BCller.pdf\r\n\r\n%PDF"),
        body(  # .NET's HttpClient
            b'Content-Disposition: form-data; name=resume; filename="=?utf-8?B?TcO8bGxlci5wZGY=?="; '
            b"filename*=utf-8''M%C3%BCller.pdf\r\n\r\n%PDF"
        ),
        body(b"Content-Disposition: form-data; name*=utf-8''%C3%A9t%C3%A9\r\n\r\nvalue"),
    ],
    ids=[
        "repeated",
        "application-and-resume",
        "non-ascii-filename",
        "latin-1",
        "unknown-charset",
        "empty",
        "crlf",
        "filename-star-only",
        "dotnet-filename",
        "name-star",
    ],
)
def test_fields_and_files_are_what_werkzeug_gave(data: bytes) -> None:
    form, files = parse(FormDataParser, data)
    expected_form, expected_files = parse(WerkzeugParser, data)
    assert list(form.items(multi=True)) == list(expected_form.items(multi=True))
    assert files == expected_files


def test_a_large_file_goes_to_a_temporary_file_not_memory() -> None:
    """werkzeug's stream factory: a body over 500 KB has its files in a temporary file."""
    content = b"%PDF" + b"x" * 600_000
    _, [(_, _, _, read, stream)] = parse(FormDataParser, body(file_part("resume", b"cv.pdf", content)))
    assert read == content
    assert stream is not io.BytesIO


@pytest.mark.parametrize(
    ("data", "limits"),
    [
        (body(field("big", b"x" * 2_000)), {"max_form_memory_size": 1_000}),
        (body(*(field(f"f{n}", b"x") for n in range(11))), {"max_form_parts": 10}),
    ],
    ids=["field-over-max-form-memory", "parts-over-max-form-parts"],
)
def test_the_limits_are_a_413_as_with_werkzeug(data: bytes, limits: dict[str, int]) -> None:
    for parser in (FormDataParser, WerkzeugParser):
        with pytest.raises(RequestEntityTooLarge):
            parse(parser, data, **limits)


@pytest.mark.parametrize(
    "data",
    [
        b"no multipart at all",
        body(field("a", b"1"))[:-10],  # cut before the closing boundary
        b"--"
        + BOUNDARY.encode()
        + b"\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--"
        + BOUNDARY.encode()
        + b"--",
        b"--"
        + BOUNDARY.encode()
        + b"\r\n"
        + b"X-Long: "
        + b"h" * 100_000
        + b"\r\n\r\nv\r\n--"
        + BOUNDARY.encode()
        + b"--",
        body(field("a", b"1"), file_part("resume", b"cv.pdf", b"x" * 600_000))[:-100],  # in a temporary file
    ],
    ids=["not-multipart", "truncated", "no-name", "huge-header", "truncated-in-a-large-file"],
)
def test_a_broken_body_is_an_empty_form_or_a_413_never_an_error(data: bytes) -> None:
    """FormDataParser is silent on a ValueError (werkzeug's default): the view then sees no fields, and no temporary
    file is left open (pytest turns the ResourceWarning of one collected open into an error)."""
    try:
        form, files = parse(FormDataParser, data)
    except RequestEntityTooLarge:
        return
    finally:
        gc.collect()
    assert "a" not in form or form["a"] == "1"
    assert not files


def test_a_folded_header_line_makes_the_body_invalid() -> None:
    """`multipart` joins each continuation line onto its header again (a 25 MB body of short ones cost 12 s of CPU,
    werkzeug 1 s): a folded line, which no browser or HTTP library sends, ends the parse at once."""
    folded = b"".join(b"X-H%d: v\r\n" % i + b" x\r\n" * 2000 for i in range(7))
    data = body(*[field("a", b"v", folded)] * 20)
    form, files = parse(FormDataParser, data)
    assert not form
    assert not files
    unfolded = body(*[field("a", b"v", b"".join(b"X-H%d: v\r\n" % i for i in range(7)))] * 20)
    assert parse(FormDataParser, unfolded)[0].getlist("a") == ["v"] * 20


def test_a_missing_boundary_is_an_empty_form() -> None:
    parser = FormDataParser()
    _, form, files = parser.parse(io.BytesIO(b"x"), "multipart/form-data", 1, {})
    assert not form
    assert not files


def test_the_most_parts_flask_allows_are_all_kept() -> None:
    data = body(*(field("f", b"") for _ in range(1000)))
    form, _ = parse(FormDataParser, data, max_form_parts=1000)
    assert len(form.getlist("f")) == 1000


def test_an_application_with_its_resume_arrives_through_the_app(client, sandbox: Sandbox) -> None:
    """The app parses with it: the JSON part and the file reach intake."""
    assert client.application.request_class.form_data_parser_class is FormDataParser
    posting = file_posting(sandbox)
    answer = client.post(
        f"/api/v1/postings/{posting['id']}/applications",
        data={
            "application": json.dumps(lever_body(sandbox, posting["id"])),
            "resume": (io.BytesIO(b"%PDF-1.7\n" + b"0" * 5000), "cv.pdf"),
        },
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
