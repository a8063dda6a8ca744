"""The library's code and derivations the playground's math panel links to, shown read-only in the browser.

Only the files named in ``SOURCES`` (modules of this package) and ``DOCS`` (pages of the checkout's ``docs/``
folder, absent from an installed wheel) are served: a request names a key of those tables, never a path. Each
file is shown as escaped text, one anchor per line (``#L12``), per function or class (``#Dense.preactivation``, and
``#forward`` at the first ``forward``) and per Markdown heading (``#dense``, as GitHub spells it), so the panel
can link to the very function.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DOCS_DIR = PACKAGE_DIR.parents[1] / "docs"  # src/NeuralNetworks -> the checkout's root
SOURCES = ("nn/layers/core.py", "nn/layers/base.py", "nn/activations.py", "nn/losses.py", "nn/optimizers.py",
           "nn/models.py", "data/toy.py", "app/playground_run.py")
DOCS = ("forward.md", "backpropagation.md", "optimizers.md", "training.md", "playground.md")
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · NeuralNetworks</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
<link rel="stylesheet" href="/static/playground.css"></head>
<body class="source-page"><header class="source-head"><a href="/playground">← playground</a> <b>{title}</b></header>
<pre class="source">{lines}</pre></body></html>
"""


class SourceNotShown(LookupError):
    """A file the playground does not show (not in ``SOURCES``/``DOCS``, or no docs folder in this install)."""


def _python_anchors(text: str) -> dict[int, list[str]]:
    """Line number -> the qualified names (``Class.method``) defined on it, and the bare name (``method``) of
    the first definition of each, which a link can use whichever class of the file defines it."""
    anchors: dict[int, list[str]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                line = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                anchors.setdefault(line, []).append(name)
                visit(child, name + ".")

    visit(ast.parse(text), "")
    taken = {name for names in anchors.values() for name in names}
    for line in sorted(anchors):  # the bare name too (``#train_on_batch``), at its first definition
        for name in list(anchors[line]):
            bare = name.rpartition(".")[2]
            if bare not in taken:
                anchors[line].append(bare)
                taken.add(bare)
    return anchors


def heading_slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens (as
    docs/check_references.py spells it)."""
    text = re.sub(r"[`*_$\\]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _markdown_anchors(text: str) -> dict[int, list[str]]:
    anchors: dict[int, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        found = re.match(r"#{1,6}\s+(.*)", line)
        if found:
            anchors[number] = [heading_slug(found.group(1))]
    return anchors


def read(kind: str, name: str) -> tuple[str, str]:
    """The text and title of ``name`` among the ``kind`` ("source" or "docs") files shown."""
    if kind == "source" and name in SOURCES:
        return (PACKAGE_DIR / name).read_text(encoding="utf-8"), f"NeuralNetworks/{name}"
    if kind == "docs" and name in DOCS:
        path = DOCS_DIR / name
        if path.is_file():
            return path.read_text(encoding="utf-8"), f"docs/{name}"
        raise SourceNotShown(f"docs/{name} is not part of this installation: the docs folder comes with a "
                             "checkout of the repository")
    shown = SOURCES if kind == "source" else DOCS
    raise SourceNotShown(f"The playground shows only these {kind} files: {', '.join(shown)}")


def render(kind: str, name: str) -> str:
    """The HTML page showing ``name`` with its anchors; ``SourceNotShown`` for any other file."""
    text, title = read(kind, name)
    anchors = _python_anchors(text) if name.endswith(".py") else _markdown_anchors(text)
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        names = "".join(f'<a id="{html.escape(anchor)}"></a>' for anchor in anchors.get(number, ()))
        lines.append(f'<span class="line" id="L{number}">{names}{html.escape(line)}</span>')
    return PAGE.format(title=html.escape(title), lines="".join(lines))  # each line is a block of its own
