"""The drawing page's files, shared by the live app (``app``) and the static web export (``export.web``).

Neither imports the other: both read the page from here. ``static/index.html`` carries two markers, comments the
readers replace: the app puts a form post's result at ``RESULT_MARKER``, the export loads its bundled ``model.js``
at ``MODELS_MARKER`` (before ``app.js`` runs).
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_FILE = STATIC_DIR / "index.html"
RESULT_MARKER = "<!--server-result-->"
MODELS_MARKER = "<!--bundled-models-->"
PAGE_ASSETS = ("app.js", "nn.js", "strokes.js", "style.css", "favicon.svg")  # what the page loads from static/

__all__ = ["MODELS_MARKER", "PAGE_ASSETS", "PAGE_FILE", "RESULT_MARKER", "STATIC_DIR"]
