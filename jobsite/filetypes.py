"""Uploaded files judged by their content, not their name: the document types Lever takes for a resume."""

from __future__ import annotations

import io
import zipfile

KINDS = {  # kind -> (extension, content type)
    "pdf": (".pdf", "application/pdf"),
    "doc": (".doc", "application/msword"),
    "docx": (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "odt": (".odt", "application/vnd.oasis.opendocument.text"),
    "rtf": (".rtf", "application/rtf"),
    "txt": (".txt", "text/plain"),
}
ACCEPT = ",".join(ext for ext, _ in KINDS.values())


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


def _zip_kind(content: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            names = set(z.namelist())
            if "word/document.xml" in names and "[Content_Types].xml" in names:
                return "docx"
            if "mimetype" in names and z.read("mimetype").strip() == b"application/vnd.oasis.opendocument.text":
                return "odt"
    except (zipfile.BadZipFile, KeyError, OSError):
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
