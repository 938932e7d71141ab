"""Uploaded files are judged by their content, and a zip bomb is refused without being inflated."""

from __future__ import annotations

import io
import resource
import time
import zipfile

import pytest

from jobsite.records import filetypes

from .helpers import TIMING


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "doc"),
        (b"{\\rtf1 hello}", "rtf"),
        (zipped({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<w/>"}), "docx"),
        (zipped({"mimetype": filetypes.ODT_MIMETYPE, "content.xml": b"<x/>"}, zipfile.ZIP_STORED), "odt"),
        ("Jane Doe\nEngineer, Zürich\n".encode(), "txt"),
        (b"\x7fELF\x02\x01\x01", None),
        (b"line\x00with a NUL", None),
        (b"   \n", None),
        (b"PK\x03\x04 not really a zip", None),
        (zipped({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet"}), None),
    ],
)
def test_sniff(content: bytes, kind: str | None) -> None:
    assert filetypes.sniff(content) == kind


@TIMING  # measures memory and time
def test_an_odt_whose_mimetype_inflates_to_hundreds_of_megabytes_is_refused_without_inflating_it(
    odt_bomb: bytes,
) -> None:
    bomb = odt_bomb  # 400 MiB inflated (conftest)
    assert len(bomb) < 2000
    assert zipfile.ZipFile(io.BytesIO(bomb)).getinfo("mimetype").file_size > 400 * 2**20  # as its header says
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    assert filetypes.sniff(bomb) is None
    assert time.monotonic() - started < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB: nothing was inflated


def test_a_docx_claiming_a_huge_member_or_too_many_entries_is_refused() -> None:
    huge = zipped({"[Content_Types].xml": b"<x/>", "word/document.xml": b"\0" * (50 * 2**20)})
    assert filetypes.sniff(huge) is None
    many = zipped(
        {
            "[Content_Types].xml": b"<x/>",
            "word/document.xml": b"<w/>",
            **{f"f{i}": b"" for i in range(filetypes.MAX_ZIP_ENTRIES)},
        },
        zipfile.ZIP_STORED,
    )
    assert filetypes.sniff(many) is None


def test_a_docx_whose_members_together_declare_too_much_is_refused() -> None:
    """Issue 28, item 1: each member was bounded alone, so a 1.1 MB file could declare 641 MB per part."""
    import os

    padding = {"word/media/image1.png": os.urandom(2**20)}  # a megabyte that does not compress
    each = 60 * 2**20  # under the ratio bound of one member, over the total with two
    ok = zipped(
        {"[Content_Types].xml": b"<x/>", "word/document.xml": b"<w/>", **padding, "word/styles.xml": b" " * each}
    )
    assert filetypes.sniff(ok) == "docx"
    too_much = zipped(
        {
            "[Content_Types].xml": b"<x/>",
            "word/document.xml": b"<w/>",
            **padding,
            "word/styles.xml": b" " * each,
            "word/numbering.xml": b" " * each,
        }
    )
    assert filetypes.sniff(too_much) is None


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("cv.pdf", b"%PDF-1.7\n...", "pdf"),
        ("cv.txt", b"Ada Lovelace\n", "txt"),
        ("resume.hta", b"<script>run()</script>\n", "txt"),  # kept as text, and goes out as resume.txt
        ("cv.pdf", b"<!doctype html><p>hello</p>\n", None),  # text under a document's name
        ("cv.DOCX", b"Ada Lovelace\n", None),
        ("cv.pdf", b"MZ\x90\x00\x03\x00", None),
        ("", b"Ada Lovelace\n", "txt"),
    ],
)
def test_kind_of_an_upload(name: str, content: bytes, kind: str | None) -> None:
    assert filetypes.kind_of(name, content) == kind
