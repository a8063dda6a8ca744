"""The drawing page's files, shared by the live app (``app``) and the static web export (``export.web``).

Neither imports the other: both read the page from here. ``static/index.html`` carries two markers, comments the
readers replace: the app puts a form post's result at ``RESULT_MARKER``, the export loads its bundled ``model.js``
at ``MODELS_MARKER`` (before ``app.js`` runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_FILE = STATIC_DIR / "index.html"
RESULT_MARKER = "<!--server-result-->"
MODELS_MARKER = "<!--bundled-models-->"
# What the page loads from static/.
PAGE_ASSETS = ("app.js", "board.js", "nn.js", "nn-conv.js", "nn-winograd.js", "strokes.js", "style.css", "favicon.svg")
# What the page may load: its own scripts, style and images (and data: images, the previews), nothing inline, no
# plugin, no <base>, no form post elsewhere. The app sends it as a header (with frame-ancestors, which only a header
# may carry); the static export writes it into the page's <head>, where it also holds from file://.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'")
HEADER_ONLY_POLICY = "frame-ancestors 'none'"
# Characters escaped in JSON written into a script or a page: `<` (``</script>``, ``<!--``), `>` and `&`, and the
# two line separators JavaScript once ended lines at (``json.dumps`` with ``ensure_ascii`` escapes those already).
_SCRIPT_ESCAPES = MappingProxyType({ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                                    0x2028: "\\u2028", 0x2029: "\\u2029"})


def script_json(value: object) -> str:
    """``value`` as a JSON text that is safe inside generated JavaScript or an HTML ``<script>``: ASCII only, no
    raw line terminator, no ``<``, ``>`` or ``&``; parsed back (as JSON or as a JavaScript expression) it is
    ``value``. Names from files or users reach generated code only through this."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False).translate(_SCRIPT_ESCAPES)


__all__ = ["CONTENT_SECURITY_POLICY", "HEADER_ONLY_POLICY", "MODELS_MARKER", "PAGE_ASSETS", "PAGE_FILE",
           "RESULT_MARKER", "STATIC_DIR", "script_json"]
