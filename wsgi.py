"""WSGI entry point for servers other than `jobsite web`, e.g. `gunicorn wsgi:app`."""

from jobsite.web.app import create_app

app = create_app()
