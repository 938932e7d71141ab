"""What a resume says about its writer, to fill the application form: full name, email, phone, links, current
company and location.

The file is read in memory and forgotten: nothing is stored or logged. Hostile files are bounded as uploads are: the
kind is judged by content (records/filetypes.sniff, which refuses zip bombs before inflating anything), and the rest
runs in a child process with limits on CPU, memory and time (confined.py), because a parser's worst case is not ours
to bound: a 2.5 KB ODT of nested paragraphs cost 76 s of CPU and 3.5 GB. In the child, a PDF is read for its first
few pages only, and a docx's or odt's XML is checked in one streaming pass before any tree is built: at most
MAX_XML_BYTES inflated over all its parts, MAX_XML_ELEMENTS elements, MAX_XML_DEPTH levels, no DTD.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

import docx
import pypdf
from defusedxml import ElementTree
from pypdf.errors import PyPdfError

from .. import confined
from ..records import filetypes

READABLE = ("pdf", "docx", "odt", "txt")  # the kinds we read; .doc and .rtf are accepted uploads but not read here
MAX_PAGES = 3  # a resume's contact details are on its first page; this bounds a 500-page PDF's cost
MAX_TEXT_CHARS = 20_000  # more text than any resume's first pages: the rest is never searched
MAX_XML_BYTES = 8 * 2**20  # the inflated XML of a docx or odt we read, all parts (a real one has a few hundred KB)
MAX_XML_ELEMENTS = 200_000  # a real resume's parts have a few thousand; 8 MB of empty paragraphs cost 44 s of CPU
MAX_XML_DEPTH = 64  # a real one nests about 15 deep; nested paragraphs made the ODT's text quadratic
LIMITS = confined.Limits(cpu_s=5, memory_mb=256, wall_s=10)
MAX_URLS = 5

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{5,18}\d(?!\w)")
URL = re.compile(r"\b(?:https?://|www\.|(?:linkedin\.com|github\.com|gitlab\.com)/)[^\s<>\"'()\[\]]+", re.I)
DATES = re.compile(r"(19|20)\d\d\s*[-–/.]\s*(\d\d?\s*[-/.]\s*\d\d?|(19|20)\d\d)")  # 2019-2023, 2020-01-15
NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'’.-]*(?:['’.-][^\W\d_]+)*\.?$")
# Company and location where resumes state them: a labelled line ("Current company: …", "Standort: …",
# "Entreprise : …"), or the headline under the name ("Engineer at Acme", "Ingenieurin bei Acme", "Ingénieur chez
# Acme"; "Based in Berlin", "Wohnhaft in Köln", "Basée à Lyon"). Each in English, German and French.
COMPANY_LABEL = re.compile(
    r"^(?:current (?:company|employer)|company|employer|aktueller arbeitgeber|arbeitgeber|"
    r"unternehmen|firma|entreprise(?: actuelle)?|employeur(?: actuel)?|soci[ée]t[ée])\s*:\s*"
    r"(?P<value>.+)$",
    re.I,
)
LOCATION_LABEL = re.compile(
    r"^(?:current location|location|based in|city|address|standort|wohnort|ort|adresse|"
    r"localisation|lieu|ville)\s*:\s*(?P<value>.+)$",
    re.I,
)
COMPANY_HEADLINE = re.compile(r"\s(?:at|@|bei|chez)\s+(?P<value>[A-ZÀ-ÖØ-Þ][^\d|·•,;()]{1,59})$")  # a name
LOCATION_HEADLINE = re.compile(
    r"^(?:based in|living in|located in|wohnhaft in|ans[äa]ssig in|bas[ée]e? [àa]|"
    r"r[ée]sidant [àa]|habite [àa])\s+(?P<value>[^\d|·•;()]{2,80})$",
    re.I,
)
HEADLINE_LINES = 12  # the headline sits under the name, above the experience
CUT = re.compile(r"\s+(?:[|·•–—]|-\s|since\b|seit\b|depuis\b)")  # what follows the value on its line
NOT_A_NAME = {"curriculum", "vitae", "resume", "résumé", "cv", "lebenslauf", "profile", "contact", "summary"}
ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
XLINK = "http://www.w3.org/1999/xlink"


class Unreadable(Exception):
    """Not a document we read."""


class Broken(Exception):
    """A document of a kind we read that could not be read: damaged, or hostile enough to reach a limit."""


class Busy(Exception):
    """This process is already reading as many resumes as it allows."""


@dataclass
class Found:
    """What the resume gave; absent fields are None (or no urls)."""

    full_name: str | None = None
    email: str | None = None
    phone: str | None = None
    urls: list[str] = field(default_factory=list)
    current_company: str | None = None
    current_location: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The API's answer: only what was found."""
        out: dict[str, Any] = {
            k: v
            for k, v in (
                ("fullName", self.full_name),
                ("email", self.email),
                ("phone", self.phone),
                ("currentCompany", self.current_company),
                ("currentLocation", self.current_location),
            )
            if v
        }
        if self.urls:
            out["urls"] = self.urls
        return out


def read(content: bytes) -> Found:
    """The name, email, phone and links of the resume in `content`, read in a confined child. Raises Unreadable,
    Broken or Busy."""
    kind = filetypes.sniff(content)
    if kind not in READABLE:
        raise Unreadable(kind or "unknown")
    try:
        answer = confined.run(_reader(kind), content, LIMITS)
    except confined.Busy:
        raise Busy() from None
    except confined.Failed as e:
        raise Broken(e.reason) from None
    if not isinstance(answer, dict):
        raise Broken("unreadable")
    return Found(
        full_name=answer.get("fullName"),
        email=answer.get("email"),
        phone=answer.get("phone"),
        urls=list(answer.get("urls", [])),
        current_company=answer.get("currentCompany"),
        current_location=answer.get("currentLocation"),
    )


def _reader(kind: str) -> Callable[[bytes], dict[str, Any] | None]:
    """What the child runs: the resume's details as the API answers them, or None for a broken file."""

    def read_in_child(content: bytes) -> dict[str, Any] | None:
        try:
            text, links = {"pdf": _pdf, "docx": _docx, "odt": _odt, "txt": _txt}[kind](content)
        except (
            PyPdfError,
            zipfile.BadZipFile,
            KeyError,
            ValueError,
            OSError,
            ElementTree.ParseError,
            expat.ExpatError,
            RecursionError,
        ):
            return None
        return find(text[:MAX_TEXT_CHARS], links).to_json()

    return read_in_child


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
    found.current_company, found.current_location = _where(text)
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


def _where(text: str) -> tuple[str | None, str | None]:
    """The current company and location: a labelled line anywhere in the first pages, else the headline's words."""
    company = location = None
    for number, raw in enumerate(text.splitlines()):
        line = " ".join(raw.split())
        if not line or len(line) > 120:
            continue
        headline = CUT.split(line, maxsplit=1)[0] if number < HEADLINE_LINES else ""
        if company is None and (m := COMPANY_LABEL.match(line) or COMPANY_HEADLINE.search(headline)):
            company = _value(m.group("value"))
        if location is None and (m := LOCATION_LABEL.match(line) or LOCATION_HEADLINE.match(headline)):
            location = _value(m.group("value"))
    return company, location


def _value(text: str) -> str | None:
    """The value alone: what follows it on the line (a separator, "since 2021") and closing punctuation dropped."""
    value = CUT.split(text, maxsplit=1)[0].strip(" ,;:")
    return value if 2 <= len(value) <= 80 else None


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


def _bounded_xml(content: bytes, members: Callable[[str], bool]) -> None:
    """Refuse before any tree is built: the XML `members` must inflate to at most MAX_XML_BYTES together (declared
    sizes first, then what is actually inflated), hold MAX_XML_ELEMENTS elements and nest MAX_XML_DEPTH deep at
    most, and declare no DTD. Streams through expat, keeping nothing. Raises ValueError."""
    counts = {"elements": 0, "depth": 0}

    def start(_name: str, _attributes: Any) -> None:
        counts["elements"] += 1
        counts["depth"] += 1
        if counts["depth"] > MAX_XML_DEPTH or counts["elements"] > MAX_XML_ELEMENTS:
            raise ValueError("too many or too deeply nested XML elements")

    def end(_name: str) -> None:
        counts["depth"] -= 1

    def no_dtd(*_args: Any) -> None:
        raise ValueError("a DTD")

    with zipfile.ZipFile(io.BytesIO(content)) as z:
        chosen = [info for info in z.infolist() if members(info.filename)]
        if sum(info.file_size for info in chosen) > MAX_XML_BYTES:
            raise ValueError("too much XML")
        left = MAX_XML_BYTES
        for info in chosen:
            parser = expat.ParserCreate()
            parser.StartElementHandler, parser.EndElementHandler = start, end
            parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = no_dtd
            with z.open(info) as member:
                while chunk := member.read(min(65536, left + 1)):
                    left -= len(chunk)
                    if left < 0:
                        raise ValueError("too much XML")
                    parser.Parse(chunk, False)
            parser.Parse(b"", True)


def _docx(content: bytes) -> tuple[str, list[str]]:
    # python-docx parses every XML part (styles, numbering, settings ...), not only the document
    _bounded_xml(content, lambda name: name.endswith((".xml", ".rels")))
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
    _bounded_xml(content, lambda name: name == "content.xml")
    with zipfile.ZipFile(io.BytesIO(content)) as z, z.open("content.xml") as member:
        root = ElementTree.fromstring(member.read(MAX_XML_BYTES + 1))  # defusedxml: no entities, no DTD tricks
    lines: list[str] = []
    _paragraphs(root, None, lines)
    links = [a.get(f"{{{XLINK}}}href", "") for a in root.iter(f"{{{ODF_TEXT}}}a")]
    return "\n".join(lines), links


def _paragraphs(element: Any, text: list[str] | None, lines: list[str]) -> None:
    """Each paragraph's or heading's own text as one line (a paragraph nested in another is its own line, not part
    of the outer one's too: that made nested paragraphs quadratic), in one walk of at most MAX_XML_DEPTH levels."""
    own = [] if element.tag in (f"{{{ODF_TEXT}}}p", f"{{{ODF_TEXT}}}h") else text
    if own is not None and element.text:
        own.append(element.text)
    for child in element:
        _paragraphs(child, own, lines)
        if own is not None and child.tail:
            own.append(child.tail)
    if own is not text and own is not None:
        lines.append("".join(own))


def _txt(content: bytes) -> tuple[str, list[str]]:
    return content[: MAX_TEXT_CHARS * 4].decode("utf-8", "replace"), []
