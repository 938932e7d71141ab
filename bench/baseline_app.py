"""A minimal Flask route that returns fixed bytes from memory: the ceiling jobsite's cached pages are compared to."""

import os

from flask import Flask, Response

BODY = open(os.environ["BASELINE_BODY"], "rb").read()
app = Flask(__name__)


@app.get("/")
def page() -> Response:
    return Response(BODY, mimetype="text/html")
