"""How long POST /api/v1/autofill takes for a 2-page resume, through the app (Flask test client, no network), for a
PDF, a DOCX and an ODT built as the tests build them.

Prints the median and the worst of --runs answers per kind, in milliseconds (the goal: well under 1 s), then what
confining the parser costs (jobsite/confined.py): the same read in this process, in a forked child (what the site
does), and in a fresh `python` that imports the parser (the alternative it chose against), with their ratios.

Run: .venv/bin/python bench/autofill_bench.py [--runs 20]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from jobsite import confined
from jobsite.intake import resume
from jobsite.redisdb.redis_server import EmbeddedRedis
from jobsite.settings import load_settings
from jobsite.web.app import create_app
from tests.helpers import RESUME_LINES, resume_docx, resume_odt, resume_pdf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    filler = [f"Line {i}: projects, teams and results described at some length." for i in range(45)]
    files = {
        "pdf (2 pages)": resume_pdf(2),
        "docx (2 pages)": resume_docx(RESUME_LINES + filler),
        "odt (2 pages)": resume_odt(RESUME_LINES + filler),
    }
    root = Path(tempfile.mkdtemp(prefix="jsa"))  # short: the embedded Redis's unix socket lives in it
    server = EmbeddedRedis(root)
    server.ensure()
    try:
        settings = load_settings(
            {},
            data_dir=root / "data",
            redis_url=server.url,
            secret_key="bench-" + "x" * 16,
            lever_base_url="http://127.0.0.1:9/v1",
            submissions_per_ip_per_hour=1_000_000,
        )
        client = create_app(settings).test_client()
        for kind, content in files.items():
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                answer = client.post(
                    "/api/v1/autofill", data={"resume": (io.BytesIO(content), "cv")}, content_type="multipart/form-data"
                )
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
                assert answer.get_json()["fullName"] == "Ada Lovelace"
                answer.close()
            print(
                f"{kind:15} {len(content) // 1024:4d} KB  median {statistics.median(times):6.1f} ms  "
                f"worst {max(times):6.1f} ms"
            )
        confinement(files["docx (2 pages)"], args.runs)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def confinement(content: bytes, runs: int) -> None:
    """The docx read in process, in a forked child, and in a fresh interpreter: medians in ms, and ratios."""
    reader = resume._reader("docx")

    def median_ms(call) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    inline = median_ms(lambda: reader(content))
    forked = median_ms(lambda: confined.run(reader, content, resume.LIMITS))
    fresh = median_ms(
        lambda: subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, jobsite.intake.resume as r; r._reader('docx')(sys.stdin.buffer.read())",
            ],
            input=content,
            check=True,
        )
    )
    print(
        f"docx read in process {inline:6.1f} ms, in a forked child {forked:6.1f} ms "
        f"({forked / inline:.1f}x), in a fresh python {fresh:6.1f} ms ({fresh / forked:.0f}x the fork)"
    )


if __name__ == "__main__":
    main()
