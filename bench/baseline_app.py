"""A minimal Flask route that returns fixed bytes from memory: the ceiling jobsite's cached pages are compared to."""

import os
from pathlib import Path

from flask import Flask, Response

BODY = Path(os.environ["BASELINE_BODY"]).read_bytes()
app = Flask(__name__)


@app.get("/")
def page() -> Response:
    return Response(BODY, mimetype="text/html")
