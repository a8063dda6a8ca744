"""The doodle web app: ``create_app()`` builds it, ``run()`` serves it on http://127.0.0.1:5000."""

from .server import DEFAULT_HOST, DEFAULT_PORT, create_app, run

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "run"]
