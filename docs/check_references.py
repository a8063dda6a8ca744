"""Check that every link in docs/*.md points at something that exists.

- ``[`Name.attr`](../src/.../file.py)``: the file exists and defines ``Name.attr`` (a class, function or method;
  a leading module name, as in ``activations.get``, is allowed).
- ``[text](other.md#anchor)``: the page exists and has a heading with that GitHub anchor.
- any other relative link: the file or folder exists.

Prints one line per broken link and exits 1 if there is any; ``python docs/check_references.py``.
With ``--run-snippets`` it also runs every ```python block of the pages, each in a fresh interpreter in a
temporary folder, and reports those that fail.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
CODE_NAME = re.compile(r"^`([A-Za-z_][\w.]*)`$")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
SNIPPET_TIMEOUT_SECONDS = 120


def github_anchor(heading: str) -> str:
    """GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_$\\]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def defined_names(path: Path) -> set[str]:
    """Dotted names of the classes, functions and methods defined in a Python file."""
    names: set[str] = set()

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(prefix + node.name)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f"{prefix}{node.name}.")

    visit(ast.parse(path.read_text(encoding="utf-8")).body, "")
    return names


def problems_in(page: Path) -> list[str]:
    found = []
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for line_number, line in enumerate(text.splitlines(), start=1):
        for label, target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # an external address
            where = f"{page.name}:{line_number}: {target}"
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            if not resolved.exists():
                found.append(f"{where}: no such file")
                continue
            if anchor and resolved.suffix == ".md":
                anchors = {github_anchor(h) for h in HEADING.findall(FENCE.sub("", resolved.read_text()))}
                if anchor not in anchors:
                    found.append(f"{where}: no heading with anchor #{anchor}")
            name = CODE_NAME.match(label)
            if resolved.suffix == ".py" and name and not name.group(1).endswith(".py"):
                dotted = name.group(1)
                if dotted.split(".", 1)[0] == resolved.stem:
                    dotted = dotted.split(".", 1)[1]
                if dotted not in defined_names(resolved):
                    found.append(f"{where}: {name.group(1)} is not defined there")
    return found


def failing_snippets(page: Path) -> list[str]:
    """Run each python block of ``page`` on its own; describe the ones that exit non-zero."""
    failures = []
    for number, code in enumerate(PYTHON_BLOCK.findall(page.read_text(encoding="utf-8")), start=1):
        with tempfile.TemporaryDirectory() as folder:
            completed = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True,
                                       timeout=SNIPPET_TIMEOUT_SECONDS, check=False)
        if completed.returncode:
            last_line = (completed.stderr.strip().splitlines() or ["(no message)"])[-1]
            failures.append(f"{page.name}: python block {number} failed: {last_line}")
    return failures


def main(argv: list[str] | None = None) -> int:
    run_snippets = "--run-snippets" in (sys.argv[1:] if argv is None else argv)
    problems = [problem for page in sorted(DOCS.glob("*.md")) for problem in problems_in(page)]
    if run_snippets:
        problems += [failure for page in sorted(DOCS.glob("*.md")) for failure in failing_snippets(page)]
    for problem in problems:
        print(problem)
    checked = len(list(DOCS.glob("*.md")))
    print(f"{checked} pages, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
