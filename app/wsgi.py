"""The WSGI entry point gunicorn loads: `app.wsgi:app` (configured from the environment)."""

from app.factory import create_app

app = create_app()
