"""WSGI entry point for servers other than `jobsite web`, e.g. `gunicorn wsgi:app`."""

from jobsite import create_app

app = create_app()
