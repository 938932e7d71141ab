"""What a resume says about its writer, to fill the application form: full name, email, phone and links.

The file is read in memory and forgotten: nothing is stored or logged. Hostile files are bounded as uploads are: the
kind is judged by content (records/filetypes.sniff, which refuses zip bombs before inflating anything), a PDF is read
for its first few pages only, and no more than MAX_XML_BYTES of a docx's or odt's XML is ever inflated.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import docx
import pypdf
from defusedxml import ElementTree
from pypdf.errors import PyPdfError

from ..records import filetypes

READABLE = ("pdf", "docx", "odt", "txt")  # the kinds we read; .doc and .rtf are accepted uploads but not read here
MAX_PAGES = 3  # a resume's contact details are on its first page; this bounds a 500-page PDF's cost
MAX_TEXT_CHARS = 20_000  # more text than any resume's first pages: the rest is never searched
MAX_XML_BYTES = 8 * 2**20  # the inflated XML of a docx or odt we read (a real one has a few hundred KB)
MAX_URLS = 5

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{5,18}\d(?!\w)")
URL = re.compile(r"\b(?:https?://|www\.|(?:linkedin\.com|github\.com|gitlab\.com)/)[^\s<>\"'()\[\]]+", re.I)
DATES = re.compile(r"(19|20)\d\d\s*[-–/.]\s*(\d\d?\s*[-/.]\s*\d\d?|(19|20)\d\d)")  # 2019-2023, 2020-01-15
NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'’.-]*(?:['’.-][^\W\d_]+)*\.?$")
NOT_A_NAME = {"curriculum", "vitae", "resume", "résumé", "cv", "lebenslauf", "profile", "contact", "summary"}
ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
XLINK = "http://www.w3.org/1999/xlink"


class Unreadable(Exception):
    """Not a document we read (or a broken or hostile one)."""


@dataclass
class Found:
    """What the resume gave; absent fields are None (or no urls)."""

    full_name: str | None = None
    email: str | None = None
    phone: str | None = None
    urls: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The API's answer: only what was found."""
        out: dict[str, Any] = {k: v for k, v in (("fullName", self.full_name), ("email", self.email),
                                                 ("phone", self.phone)) if v}
        if self.urls:
            out["urls"] = self.urls
        return out


def read(content: bytes) -> Found:
    """The name, email, phone and links of the resume in `content`. Raises Unreadable."""
    kind = filetypes.sniff(content)
    if kind not in READABLE:
        raise Unreadable(kind or "unknown")
    try:
        text, links = {"pdf": _pdf, "docx": _docx, "odt": _odt, "txt": _txt}[kind](content)
    except (PyPdfError, zipfile.BadZipFile, KeyError, ValueError, OSError, ElementTree.ParseError,
            RecursionError) as e:
        raise Unreadable(kind) from e
    return find(text[:MAX_TEXT_CHARS], links)


def find(text: str, links: Iterable[str] = ()) -> Found:
    """The details in a resume's text and its hyperlinks' addresses."""
    found = Found()
    if m := EMAIL.search(text):
        found.email = m.group(0)
    for m in PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 8 <= len(digits) <= 15 and not DATES.fullmatch(m.group(0).strip()):
            found.phone = " ".join(m.group(0).split())
            break
    found.full_name = _name(text)
    urls: list[str] = []
    texts = (m.group(0).rstrip(".,;:") for m in URL.finditer(text))
    for url in [*(u.strip() for u in links), *(u if "://" in u else "https://" + u for u in texts)]:
        if not url.lower().startswith(("http://", "https://")) or len(url) > 500:
            continue  # mailto: and tel: links, or something no form field takes
        if url.rstrip("/").lower() not in {u.rstrip("/").lower() for u in urls}:
            urls.append(url)
    found.urls = urls[:MAX_URLS]
    return found


def _name(text: str) -> str | None:
    """The first short line of two to five name-like words: a resume starts with its writer's name."""
    for line in text.splitlines()[:15]:
        line = " ".join(line.split())
        words = line.split(" ")
        if not 2 <= len(words) <= 5 or len(line) > 60:
            continue
        if all(NAME_WORD.match(w) for w in words) and not NOT_A_NAME & {w.lower() for w in words}:
            return line
    return None


def _pdf(content: bytes) -> tuple[str, list[str]]:
    reader = pypdf.PdfReader(io.BytesIO(content))
    texts, links = [], []
    for page in reader.pages[:MAX_PAGES]:
        texts.append(page.extract_text() or "")
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A") or {}
            uri = action.get_object().get("/URI") if hasattr(action, "get_object") else None
            if isinstance(uri, str):
                links.append(uri)
        if sum(map(len, texts)) > MAX_TEXT_CHARS:
            break
    return "\n".join(texts), links


def _small_xml(content: bytes, member: str) -> None:
    """Refuse before inflating: `member` must exist and inflate to at most MAX_XML_BYTES."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        if z.getinfo(member).file_size > MAX_XML_BYTES:
            raise ValueError(f"{member} is too large")


def _docx(content: bytes) -> tuple[str, list[str]]:
    _small_xml(content, "word/document.xml")
    document = docx.Document(io.BytesIO(content))
    lines, links = [], []
    for paragraph in document.paragraphs:
        lines.append(paragraph.text)
        links += [h.address for h in paragraph.hyperlinks if h.address]
    for table in document.tables:
        for row in table.rows:
            lines += [cell.text for cell in row.cells]
    return "\n".join(lines), links


def _odt(content: bytes) -> tuple[str, list[str]]:
    _small_xml(content, "content.xml")
    with zipfile.ZipFile(io.BytesIO(content)) as z, z.open("content.xml") as member:
        root = ElementTree.fromstring(member.read(MAX_XML_BYTES + 1))  # defusedxml: no entities, no DTD tricks
    lines = ["".join(p.itertext()) for p in root.iter() if p.tag in (f"{{{ODF_TEXT}}}p", f"{{{ODF_TEXT}}}h")]
    links = [a.get(f"{{{XLINK}}}href", "") for a in root.iter(f"{{{ODF_TEXT}}}a")]
    return "\n".join(lines), links


def _txt(content: bytes) -> tuple[str, list[str]]:
    return content[: MAX_TEXT_CHARS * 4].decode("utf-8", "replace"), []
