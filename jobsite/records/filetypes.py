"""Uploaded files judged by their content, not their name: the document types Lever takes for a resume."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

KINDS = {  # kind -> (extension, content type)
    "pdf": (".pdf", "application/pdf"),
    "doc": (".doc", "application/msword"),
    "docx": (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "odt": (".odt", "application/vnd.oasis.opendocument.text"),
    "rtf": (".rtf", "application/rtf"),
    "txt": (".txt", "text/plain"),
}
ACCEPT = ",".join(ext for ext, _ in KINDS.values())
MAX_ZIP_ENTRIES = 2000  # a real docx or odt has a few dozen
MAX_ZIP_INFLATED = 100 * 2**20  # all members together, as declared: a 10 MB docx of photos inflates to about 11 MB
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"


def sniff(content: bytes) -> str | None:
    """The document kind of `content` (a key of KINDS), or None when it is none of them."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "doc"
    if content.startswith(b"{\\rtf"):
        return "rtf"
    if content.startswith(b"PK\x03\x04"):
        return _zip_kind(content)
    return "txt" if _is_text(content) else None


def kind_of(filename: str, content: bytes) -> str | None:
    """The kind of an upload every path that sends a file to Lever accepts (applications, talent sign-ups): its
    content's, or None when the content is none of ours or is text under a document's name (an HTML page or a script
    called `cv.pdf`). The file then goes out named for this kind (records/uploads.safe_name), never the sender's."""
    kind = sniff(content)
    claimed = Path(filename or "").suffix.lower()
    if kind == "txt" and claimed in {ext for k, (ext, _) in KINDS.items() if k != "txt"}:
        return None
    return kind


def _zip_kind(content: bytes) -> str | None:
    """docx or odt by their members, reading no more than a few bytes of any of them: a zip bomb (a tiny file whose
    member inflates to gigabytes, or one of 90,000 entries) is refused without being inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            entries = z.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                return None
            if any(e.file_size > 64 * len(content) + 2**20 for e in entries):
                return None  # a compression ratio no office document has
            if sum(e.file_size for e in entries) > MAX_ZIP_INFLATED:
                return None  # each member under the ratio, but many of them: 1.1 MB declared 641 MB per part
            names = {e.filename for e in entries}
            if "word/document.xml" in names and "[Content_Types].xml" in names:
                return "docx"
            if "mimetype" in names:
                with z.open("mimetype") as member:
                    if member.read(len(ODT_MIMETYPE) + 2).strip() == ODT_MIMETYPE:
                        return "odt"
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, NotImplementedError, RuntimeError):
        return None
    return None


def _is_text(content: bytes) -> bool:
    if not content.strip():
        return False
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)
