"""The one support module of the tests: the sandbox's handle, servers and workers started by tests, waiting on a
condition, valid applications for the sandbox's postings, signing in to the console, a brand. Fixtures live in
conftest.py and use these; tests import from here, never from conftest or from each other."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jobsite.intake import accept
from jobsite.intake.forms import answers_from_lever_body, build_form, validate
from jobsite.sandbox import SandboxServer
from jobsite.services import Services
from jobsite.settings import Settings


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


def required_answers(form: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Lever's `customQuestions` answering every required question of `form` (the first option, or "answer n")."""
    custom = []
    for qset in form["customQuestions"]:
        fields = []
        for f in qset["fields"]:
            value: Any = None
            if f["required"]:
                value = f["options"][0]["text"] if f.get("options") else f"answer {n}"
            fields.append({"value": value})
        custom.append({"id": qset["id"], "fields": fields})
    return custom


def lever_body(sandbox: Sandbox, posting_id: str, n: int = 0) -> dict[str, Any]:
    """A JSON application in the shape of Lever's Apply to a posting, answering every required question."""
    custom = required_answers(sandbox.state.questions[posting_id], n)
    return {
        "personalInformation": [
            {"name": "fullName", "value": f"Candidate {n}"},
            {"name": "email", "value": f"candidate{n}@example.com"},
        ],
        "urls": [{"name": "LinkedIn", "value": f"https://linkedin.com/in/c{n}"}],
        "customQuestions": custom,
    }


def required_cards(sandbox: Sandbox, posting_id: str) -> dict[str, str]:
    """The HTML form's answers to every required custom question of a posting (`cards[<set>][field<i>]`)."""
    return {
        f"cards[{qset['id']}][field{i}]": f["options"][0]["text"] if f.get("options") else "yes"
        for qset in sandbox.state.questions[posting_id]["customQuestions"]
        for i, f in enumerate(qset["fields"])
        if f["required"]
    }


def eeo_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form has Lever's EEO section (a US posting) and every custom field type."""
    for i, (pid, form) in enumerate(sandbox.state.questions.items()):
        p = sandbox.state.postings[pid]
        if i % 2 == 0 and "eeoQuestions" in form and p in sandbox.public_postings():
            return p
    raise AssertionError("no such posting in the seed")


RESUME = {
    "fullName": "Ada Lovelace",
    "email": "ada.lovelace@example.com",
    "phone": "+44 20 7946 0958",
    "urls": ["https://github.com/ada", "https://linkedin.com/in/ada-lovelace"],
    "currentCompany": "Babbage & Co.",
    "currentLocation": "London, United Kingdom",
}
RESUME_LINES = [
    "Ada Lovelace",
    "Analytical engineer at Babbage & Co. | since 2019",
    "Based in London, United Kingdom",
    f"{RESUME['email']} | {RESUME['phone']}",
    "linkedin.com/in/ada-lovelace",
    "Experience",
    "2019 - 2023  Babbage & Co., notes on the Analytical Engine",
    "2023-01-15  Published the first program",
]


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
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Annot /Subtype /Link /Rect [72 600 300 615] /Border [0 0 0] "
        b"/A << /S /URI /URI (https://github.com/ada) >> >>",
    ]
    for i, stream in enumerate(contents):
        annots = " /Annots [4 0 R]" if i == 0 else ""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {6 + 2 * i} 0 R{annots} >>".encode()
        )
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
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'office:version="1.2"><office:body><office:text>{body}<text:p>Code: <text:a xlink:type="simple" '
        'xlink:href="https://github.com/ada">my GitHub</text:a></text:p></office:text></office:body>'
        "</office:document-content>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def odt_nested(depth: int = 10_000) -> bytes:
    """Issue 28's ODT bomb, about 1 KB: `depth` paragraphs each inside the one before, each with a letter. The
    text of every paragraph held all those inside it: quadratic work (1.2 KB took 6.6 s of CPU and 423 MB)."""
    import io
    import zipfile

    body = "<text:p>x" * depth + "</text:p>" * depth
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f"<office:body><office:text>{body}</office:text></office:body></office:document-content>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


def docx_bomb(parts: dict[str, bytes]) -> bytes:
    """A docx (the resume's) with `parts` replaced or added, and 256 KB of random bytes stored as an image, so each
    part may inflate 64 times more than the file without looking like a zip bomb to records/filetypes."""
    import io
    import os
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(resume_docx())) as source, zipfile.ZipFile(out, "w") as z:
        for info in source.infolist():
            if info.filename not in parts:
                z.writestr(info, source.read(info), zipfile.ZIP_DEFLATED)
        for name, content in parts.items():
            z.writestr(name, content, zipfile.ZIP_DEFLATED, compresslevel=9)
        z.writestr("word/media/image1.png", os.urandom(256 * 1024), zipfile.ZIP_STORED)
    return out.getvalue()


W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx_huge_parts(mb: int = 12) -> bytes:
    """Issue 28: a docx whose styles, numbering and settings parts are `mb` MB of elements each (only document.xml's
    size was checked: 1.1 MB took a worker to 1.5 GB, and it stayed there)."""

    def part(root: bytes, element: bytes) -> bytes:
        return b"<w:%s %s>" % (root, W) + element * (mb * 2**20 // len(element)) + b"</w:%s>" % root

    return docx_bomb(
        {
            "word/styles.xml": part(b"styles", b'<w:style w:type="paragraph" w:styleId="a"/>'),
            "word/numbering.xml": part(b"numbering", b'<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>'),
            "word/settings.xml": part(b"settings", b'<w:zoom w:percent="100"/>'),
        }
    )


def docx_empty_paragraphs(mb: int = 7) -> bytes:
    """Issue 28: a docx whose document is `mb` MB of empty paragraphs (144 KB of 8 MB took 44 s of CPU); under the
    8 MB that document.xml alone was allowed."""
    body = b"<w:p/>" * (mb * 2**20 // 6)
    return docx_bomb({"word/document.xml": b"<w:document %s><w:body>%s</w:body></w:document>" % (W, body)})


def pdf_bomb() -> bytes:
    """A PDF whose page content inflates to 300 MB (about 300 KB on the wire): pypdf stops at its limit, slowly."""
    import zlib

    squeeze = zlib.compressobj(9)
    stream = b"".join(squeeze.compress(b" " * 2**20) for _ in range(300)) + squeeze.flush()
    pdf = resume_pdf(1).replace(b"/Length", b"/Filter /FlateDecode /Length", 1)
    start = pdf.index(b"stream\n", pdf.index(b"/Filter")) + 7
    end = pdf.index(b"\nendstream", start)
    return pdf[:start] + stream + pdf[end:]


# pyproject's addopts run the suite on four pytest-xdist workers. Each worker has its own session fixtures (its own
# redis-server in a temp dir, its own sandbox on a free port, its own Chromium), so tests on different workers share
# nothing. The tests that would disturb each other's timing are marked TIMING: xdist (`--dist loadgroup`) runs them
# all on one worker, one after another. Tests that kill their own processes or measure one process's memory need
# not be: nothing of theirs is shared, and their bounds do not depend on the machine's load.
TIMING = pytest.mark.xdist_group("timing")
"""Pace against Lever's real limit and count 429s in a strict window, or time a bound."""


# How often a test's own HTTP server looks for a shutdown request. socketserver's default, 0.5 s, made every test
# that stops one wait 0.25 s on average for nothing.
SHUTDOWN_POLL_S = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on a free local port, with the test's `handler` deciding its answers; yields
    the port and stops the server after."""
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class Sandbox:
    """The running sandbox plus helpers to flip its switches over HTTP."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.url
        self.state = server.state

    def control(self, action: str, **body: Any) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/_sandbox/{action}", json=body, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def received(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sandbox/received", timeout=5).json()

    def count(self, endpoint: str, status: int | None = None) -> int:
        """How many requests for `endpoint` (with `status`) the sandbox received. Read from its state in this process,
        not over HTTP: tests poll this every 20 ms, and /_sandbox/received serialises every request and application
        body each time, under the lock the sandbox's own request handling takes."""
        with self.state.lock:
            return sum(
                1
                for q in self.state.requests
                if q["endpoint"] == endpoint and (status is None or q["status"] == status)
            )

    def public_postings(self) -> list[dict[str, Any]]:
        return [
            p
            for p in self.state.postings.values()
            if p["state"] == "published" and "public" in (p["distributionChannels"] or [])
        ]


class LiveServer:
    """The app on a real threaded HTTP server in this process."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

        self.thread = threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate, timeout: float = 30, interval: float = 0.02, what: str = "condition"):
    """Poll `predicate` until it returns something truthy (an event we cannot subscribe to), or fail."""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# A test machine shared with browsers and other suites (and, with xdist, the suite's other workers) delays a request by
# up to ~200 ms between its slot and the sandbox (bench/pacing_bench.py measures it): pace with room for that wherever
# a test holds Lever to a strict window.
PACING_MARGIN_MS = 300


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `jobsite worker` process that shares this test's Redis, sandbox and data dir."""

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(
        JOBSITE_DATA_DIR=str(settings.data_dir),
        REDIS_URL=settings.redis_url or "",
        LEVER_BASE_URL=settings.lever_base_url,
        JOBSITE_SECRET_KEY=settings.secret_key,
        JOBSITE_UPKEEP_INTERVAL_S="1",
        JOBSITE_DELIVERY_LEASE_S="5",
        JOBSITE_PROBE_CAP_S="2",
        JOBSITE_PROBE_INTERVAL_S="1",
        JOBSITE_LOG_LEVEL="WARNING",
        JOBSITE_PACING_MARGIN_MS=str(PACING_MARGIN_MS),
    )
    env.update(extra)
    return env


class Workers:
    """`jobsite worker` processes started by a test, stopped (or killed) by it."""

    def __init__(self) -> None:
        self.procs: list = []

    def start(self, env: dict[str, str], log: Path | None = None):
        """Start a worker; with `log`, its log lines (stderr) go to that file for the test to read."""

        out = open(log, "ab") if log else None  # noqa: SIM115 (the child holds it; closed once passed on)
        # Its own process group: a crash test kills the worker with the scheduler process RQ forks beside it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobsite", "worker"], env=env, start_new_session=True, stderr=out
        )
        if out:
            out.close()
        self.procs.append(proc)
        return proc

    @staticmethod
    def crash(proc) -> None:
        """SIGKILL the worker and everything it forked, as a machine or container crash would."""

        with contextlib.suppress(ProcessLookupError):  # crashed already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def crash_all(self) -> None:
        """At the end of a test: SIGKILL every worker and what it forked. A graceful stop waits up to a second per
        worker for RQ's scheduler to notice, and what the test checks is over; stopping cleanly is tested apart
        (test_processes, test_cli)."""

        for p in self.procs:
            self.crash(p)


ADMIN = ("ada@acme.test", "correct horse battery")


VIEWER = ("vic@acme.test", "another long password")


def csrf_in(html: str) -> str:
    """The console's CSRF token in a page's HTML (every form carries it)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def csrf(client, path: str = "/admin/") -> str:
    return csrf_in(client.get(path).get_data(as_text=True))


def sign_in(client, email: str, password: str) -> None:
    token = csrf(client, "/admin/login")
    answer = client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def submit_one(svc: Services, sandbox: Sandbox, n: int = 0, posting: dict | None = None) -> str:
    """Validate and persist one application the way the web does; returns its receipt."""

    p = posting or simple_posting(sandbox)
    form = build_form(sandbox.state.questions[p["id"]])
    app = validate(form, answers_from_lever_body(form, lever_body(sandbox, p["id"], n)), {}, 2**20)
    return accept.submit(svc.intake, app, {}, posting_title=p["text"]).receipt


def other_posting(sandbox: Sandbox) -> dict:
    first = simple_posting(sandbox)
    return next(
        p
        for i, (pid, p) in enumerate(sandbox.state.postings.items())
        if i % 2 == 1
        and p in sandbox.public_postings()
        and pid != first["id"]
        and len(p["categories"]["allLocations"]) == 1
    )


def application_body(sandbox: Sandbox, posting_id: str, email: str = "ada@example.com") -> dict:
    form = sandbox.state.questions[posting_id]
    custom = []
    for qset in form["customQuestions"]:
        fields = []
        for f in qset["fields"]:
            value = f["options"][0]["text"] if f.get("options") else ("yes" if f["required"] else None)
            fields.append({"value": [value] if f["type"] == "multiple-select" and value else value})
        custom.append({"id": qset["id"], "fields": fields})
    personal = [{"name": "fullName", "value": "Ada Lovelace"}, {"name": "email", "value": email}]
    if any(p["name"] == "preferredPostingLocation" for p in form["personalInformation"]):
        personal.append(
            {
                "name": "preferredPostingLocation",
                "value": sandbox.state.postings[posting_id]["categories"]["allLocations"][0],
            }
        )
    return {"personalInformation": personal, "customQuestions": custom}


def odd_posting(sandbox: Sandbox) -> str:
    """A published posting whose form needs no resume (odd index in the seed)."""
    ids = list(sandbox.state.questions)
    return next(pid for i, pid in enumerate(ids) if i % 2 == 1 and sandbox.state.postings[pid]["state"] == "published")


LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="32">'
    b'<rect width="120" height="32" fill="#0b6e4f"/></svg>'
)


ABOUT = """### Why join us

We build **robots** that [help people](https://example.com/mission).

- Four-day week
- Learning budget

<script>alert(1)</script>
"""


def brand_env(folder: Path) -> dict[str, str]:
    """A branded configuration: every brand setting set."""
    (folder / "logo.svg").write_bytes(LOGO)
    (folder / "favicon.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "about.md").write_text(ABOUT)
    return {
        "JOBSITE_BRAND_LOGO": str(folder / "logo.svg"),
        "JOBSITE_BRAND_FAVICON": str(folder / "favicon.png"),
        "JOBSITE_BRAND_PRIMARY_COLOUR": "#0b6e4f",
        "JOBSITE_BRAND_ACCENT_COLOUR": "#fde8c8",
        "JOBSITE_BRAND_INTRO": "We make warehouse robots that people like working with.",
        "JOBSITE_BRAND_ABOUT_FILE": str(folder / "about.md"),
        "JOBSITE_BRAND_FOOTER_LINKS": "Our blog=https://example.com/blog; Life at Acme, in pictures=https://example.com/life",
        "JOBSITE_PRIVACY_URL": "https://example.com/privacy",
    }


class RedisProxy:
    """A TCP proxy in front of a Redis (its unix socket or host:port), for the faults a Redis shows on a network:
    `pass` forwards, `blackhole` keeps connections open and answers nothing (a Redis that stops answering, a cut
    that sends no reset), `refuse` stops listening (connection refused) and closes what is open. `cut_on_exec`
    arms a one-shot cut of the next transaction that names `containing`: before EXEC reaches Redis (nothing is
    written) or after Redis answered it (written, the answer lost), as a kill -9, an OOM kill or a failover between
    WATCH and EXEC's reply would. `cut` is set once it happened: tests wait on it, not on a sleep.

    It reads the client's stream command by command (RESP arrays of bulk strings, what redis-py sends) and holds a
    transaction from MULTI to EXEC, so a cut falls exactly where the test asked."""

    def __init__(self, upstream: str | tuple[str, int]):
        self.upstream = upstream  # a unix socket path, or (host, port)
        self.mode = "pass"
        self.cut = threading.Event()
        self._armed: tuple[bytes, bool] | None = None  # (the bytes a transaction must contain, cut after EXEC)
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = free_port()
        self._listen()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def set(self, mode: str) -> None:
        assert mode in ("pass", "blackhole", "refuse")
        with self._lock:
            self.mode = mode
        if mode == "refuse":
            self._close_all()
        elif self._listener is None:
            self._listen()

    def cut_on_exec(self, containing: bytes = b"", *, after: bool = False) -> None:
        self.cut.clear()
        with self._lock:
            self._armed = (containing, after)

    def stop(self) -> None:
        self._close_all()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_all(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        for s in ([listener] if listener else []) + conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: refusing
            if isinstance(self.upstream, str):
                server = socket.socket(socket.AF_UNIX)
                server.connect(self.upstream)
            else:
                server = socket.create_connection(self.upstream)
            with self._lock:
                self._conns += [client, server]
            cutting = _Cutting()
            threading.Thread(target=self._to_redis, args=(client, server, cutting), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client, cutting), daemon=True).start()

    def _drop(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _to_client(self, server: socket.socket, client: socket.socket, cutting: _Cutting) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if cutting.replies is not None:
                    cutting.heard(data)
                elif self.mode == "pass":
                    client.sendall(data)
        cutting.heard(b"")
        self._drop(client, server)

    def _to_redis(self, client: socket.socket, server: socket.socket, cutting: _Cutting) -> None:
        buf, held = bytearray(), bytearray()
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.mode != "pass":
                    continue  # swallowed: nothing reaches Redis, nothing comes back
                buf += data
                while (command := _resp_command(buf)) is not None:
                    raw, name = command
                    if name == b"MULTI" or held:
                        held += raw
                        if name != b"EXEC":
                            continue
                        raw, held = bytes(held), bytearray()
                        after = self._cut_here(raw)
                        if after is not None:
                            if after:  # let Redis write it, and hold back its answer
                                cutting.replies = bytearray()
                                server.sendall(raw)
                                cutting.answered.wait(10)
                            self._drop(client, server)
                            self.cut.set()
                            return
                    server.sendall(raw)
        self._drop(client, server)

    def _cut_here(self, transaction: bytes) -> bool | None:
        """None to pass this transaction on; else whether to cut after EXEC (the one-shot cut is then used)."""
        with self._lock:
            if self._armed is None or self._armed[0] not in transaction:
                return None
            after, self._armed = self._armed[1], None
            return after


class _Cutting:
    """One proxied connection's answers held back while a transaction is cut after EXEC: `answered` is set once
    Redis's answer to EXEC came (an array, or an error, after MULTI's +OK and the +QUEUEDs), or the socket closed."""

    def __init__(self) -> None:
        self.replies: bytearray | None = None
        self.answered = threading.Event()

    def heard(self, data: bytes) -> None:
        if self.replies is None:
            return
        self.replies += data
        after_multi = self.replies.partition(b"+OK\r\n")[2]
        if not data or re.search(rb"(^|\r\n)[*-]", after_multi.replace(b"+QUEUED\r\n", b"")):
            self.answered.set()


def _resp_command(buf: bytearray) -> tuple[bytes, bytes] | None:
    """Take one complete command off `buf` (a RESP array of bulk strings): its bytes and its upper-cased name."""
    if not buf:
        return None
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    if buf[:1] != b"*":  # an inline command
        raw = bytes(buf[: end + 2])
        del buf[: end + 2]
        return raw, raw.split()[0].upper() if raw.split() else b""
    count, pos, name = int(buf[1:end]), end + 2, b""
    for i in range(count):
        line = buf.find(b"\r\n", pos)
        if line < 0:
            return None
        size = int(buf[pos + 1 : line])
        if len(buf) < line + 2 + size + 2:
            return None
        if i == 0:
            name = bytes(buf[line + 2 : line + 2 + size]).upper()
        pos = line + 2 + size + 2
    raw = bytes(buf[:pos])
    del buf[:pos]
    return raw, name


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m"):
    """A tmpfs of `size` mounted at `path` (as root) for the length of the block: a disk that fills up. Skips the
    test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system of `folder` until at most `leave` bytes are free; returns the filler file (delete it to
    free the disk)."""
    filler = folder / "filler"
    with open(filler, "ab") as f:
        while (free := os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize) > leave:
            try:
                f.write(b"\0" * min(free - leave, 2**20))
                f.flush()
            except OSError:
                break
    return filler


FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")  # Debian's faketime (scripts/test installs it)


def clock_env(env: dict[str, str], **faketime: str) -> dict[str, str]:
    """A worker's environment with its clock shifted by libfaketime, checked on a Python process first: time.time()
    is shifted, and time.sleep() and time.monotonic() still run at the real rate. (libfaketime shifts
    CLOCK_MONOTONIC with the wall clock: Python's time.sleep fails with EINVAL under FAKETIME_DONT_FAKE_MONOTONIC,
    so a step also steps the worker's monotonic clock, a harsher fault than an NTP step.)"""
    if not FAKETIME.exists():
        pytest.skip("libfaketime is not installed (scripts/test installs Debian's faketime)")
    env = {**env, "LD_PRELOAD": str(FAKETIME), **faketime}
    probe = "import time; t, m = time.time(), time.monotonic(); time.sleep(0.2); print(t, time.monotonic() - m)"
    shifted = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    at, slept = (float(x) for x in shifted.stdout.split())
    assert 0.19 < slept < 2
    env["FAKETIME_SHIFT_SEEN"] = str(round(at - time.time()))
    return env


def outbox_mails(outbox: SandboxServer, to: str | None = None) -> list[dict[str, Any]]:
    """The emails the `outbox` fixture's SMTP server kept, oldest first; with `to`, those to that one address."""
    kept = requests.get(f"{outbox.url}/_sandbox/outbox.json", timeout=5).json()["messages"]
    return [m for m in kept if to is None or m["recipients"] == [to]]
