"""Which functions are longer than a screen? The house rule: none over 60 lines.

    python bench/function_lengths.py              # every function over 60 lines; exit 1 if any
    python bench/function_lengths.py --limit 40

A function's length runs from its `def` (decorators not counted) to its last line, docstring
included. Searched: lib/ and experiments/, less lib/alignlab/templates (files the scaffold fills
in, not code that runs as it stands).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("lib", "experiments")
SKIPPED = (Path("lib") / "alignlab" / "templates",)
LIMIT = 60


def _python_files(repo: Path) -> list[Path]:
    files = []
    for root in ROOTS:
        for path in sorted((repo / root).rglob("*.py")):
            relative = path.relative_to(repo)
            if not any(relative.is_relative_to(skipped) for skipped in SKIPPED):
                files.append(path)
    return files


def function_lengths(path: Path) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method in one file, nested ones too."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append((child.end_lineno - child.lineno + 1, name))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(), filename=str(path)), "")
    return found


def too_long(limit: int = LIMIT, repo: Path = REPO) -> list[tuple[int, str, str]]:
    """(lines, file relative to the repo, function) for every function over `limit` lines."""
    return [
        (lines, str(path.relative_to(repo)), name)
        for path in _python_files(repo)
        for lines, name in function_lengths(path)
        if lines > limit
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=LIMIT, help="most lines a function may have")
    args = parser.parse_args(argv)
    offenders = too_long(args.limit)
    for lines, file, name in offenders:
        print(f"{lines} {file} {name}")
    if offenders:
        print(f"{len(offenders)} function(s) over {args.limit} lines", file=sys.stderr)
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
