"""Building valid applications for the sandbox's postings."""

from __future__ import annotations

from typing import Any

from .conftest import Sandbox


def _posting(sandbox: Sandbox, parity: int) -> dict[str, Any]:
    """The first public single-location posting whose seed index has this parity (odd: no file asked)."""
    for i, pid in enumerate(sandbox.state.questions):
        p = sandbox.state.postings[pid]
        if i % 2 == parity and p in sandbox.public_postings() and len(p["categories"]["allLocations"]) == 1:
            return p
    raise AssertionError("no such posting in the seed")


def simple_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form needs no file and has one location."""
    return _posting(sandbox, 1)


def file_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form requires a resume and asks one question of every custom field type."""
    return _posting(sandbox, 0)


def lever_body(sandbox: Sandbox, posting_id: str, n: int = 0) -> dict[str, Any]:
    """A JSON application in the shape of Lever's Apply to a posting, answering every required question."""
    form = sandbox.state.questions[posting_id]
    custom = []
    for qset in form["customQuestions"]:
        fields = []
        for f in qset["fields"]:
            value: Any = None
            if f["required"]:
                value = f["options"][0]["text"] if f.get("options") else f"answer {n}"
            fields.append({"value": value})
        custom.append({"id": qset["id"], "fields": fields})
    return {
        "personalInformation": [{"name": "fullName", "value": f"Candidate {n}"},
                                {"name": "email", "value": f"candidate{n}@example.com"}],
        "urls": [{"name": "LinkedIn", "value": f"https://linkedin.com/in/c{n}"}],
        "customQuestions": custom,
    }


def required_cards(sandbox: Sandbox, posting_id: str) -> dict[str, str]:
    """The HTML form's answers to every required custom question of a posting (`cards[<set>][field<i>]`)."""
    return {f"cards[{qset['id']}][field{i}]": f["options"][0]["text"] if f.get("options") else "yes"
            for qset in sandbox.state.questions[posting_id]["customQuestions"]
            for i, f in enumerate(qset["fields"]) if f["required"]}


def eeo_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form has Lever's EEO section (a US posting) and every custom field type."""
    for i, (pid, form) in enumerate(sandbox.state.questions.items()):
        p = sandbox.state.postings[pid]
        if i % 2 == 0 and "eeoQuestions" in form and p in sandbox.public_postings():
            return p
    raise AssertionError("no such posting in the seed")


RESUME = {"fullName": "Ada Lovelace", "email": "ada.lovelace@example.com", "phone": "+44 20 7946 0958",
          "urls": ["https://github.com/ada", "https://linkedin.com/in/ada-lovelace"]}
RESUME_LINES = ["Ada Lovelace", "Analytical engineer, London",
                f"{RESUME['email']} | {RESUME['phone']}", "linkedin.com/in/ada-lovelace",
                "Experience", "2019 - 2023  Babbage & Co., notes on the Analytical Engine",
                "2023-01-15  Published the first program"]


def resume_pdf(pages: int = 2, lines: list[str] = RESUME_LINES) -> bytes:
    """A real PDF of `pages` pages in Helvetica: the resume's lines on the first, filler text on the others, and a
    link annotation to GitHub on the first page (written by hand: PDF is text plus a table of byte offsets)."""
    def text(rows: list[str]) -> bytes:
        escaped = [r.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for r in rows]
        ops = "".join(f"({r}) Tj T* " for r in escaped)
        return f"BT /F1 11 Tf 14 TL 72 760 Td {ops}ET".encode("latin-1")

    filler = [f"Line {i}: projects, teams and results described at some length." for i in range(45)]
    contents = [text(lines)] + [text(filler) for _ in range(pages - 1)]
    n = len(contents)
    # objects: 1 catalog, 2 pages, 3 font, 4 link annotation, then per page: page, contents
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
               b"<< /Type /Annot /Subtype /Link /Rect [72 600 300 615] /Border [0 0 0] "
               b"/A << /S /URI /URI (https://github.com/ada) >> >>"]
    for i, stream in enumerate(contents):
        annots = " /Annots [4 0 R]" if i == 0 else ""
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {6 + 2 * i} 0 R{annots} >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def resume_docx(lines: list[str] = RESUME_LINES) -> bytes:
    """A real docx (python-docx) with the resume's lines and a hyperlink to GitHub in its last paragraph."""
    import io

    import docx
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml.ns import qn
    from docx.oxml.parser import OxmlElement

    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    paragraph = document.add_paragraph("Code: ")
    rel = paragraph.part.relate_to("https://github.com/ada", RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link, run, t = OxmlElement("w:hyperlink"), OxmlElement("w:r"), OxmlElement("w:t")
    link.set(qn("r:id"), rel)
    t.text = "my GitHub"
    run.append(t)
    link.append(run)
    paragraph._p.append(link)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def resume_odt(lines: list[str] = RESUME_LINES) -> bytes:
    """A minimal OpenDocument text with the resume's lines and a link to GitHub."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    body = "".join(f"<text:p>{escape(line)}</text:p>" for line in lines)
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" '
               f'office:version="1.2"><office:body><office:text>{body}<text:p>Code: <text:a xlink:type="simple" '
               'xlink:href="https://github.com/ada">my GitHub</text:a></text:p></office:text></office:body>'
               '</office:document-content>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return out.getvalue()
