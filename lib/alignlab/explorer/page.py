"""Assemble the explorer page: every experiment's views and the markers table, with plotly.js
embedded, into one HTML file that opens from the file system (no server, no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

TEMPLATE = Path(__file__).with_name("page.html")
MARKER_COLUMNS = ["experiment", "id", "published", "reproduced", "null_reproduced", "status"]


def _markers(table: pd.DataFrame) -> list[dict]:
    """The findings (not the controls), as the page's first table shows them."""
    findings = table[~table.control.astype(bool)] if "control" in table else table
    return [
        {c: ("" if pd.isna(row[c]) else str(row[c])) for c in MARKER_COLUMNS}
        for _, row in findings.iterrows()
    ]


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace each @@NAME@@ once, in one pass (a value is never scanned for placeholders)."""
    parts = template.split("@@")
    for i in range(1, len(parts), 2):
        if parts[i] not in values:
            raise KeyError(f"explorer template placeholder @@{parts[i]}@@ has no value")
        parts[i] = values[parts[i]]
    return "".join(parts)


def build_page(view_paths: list[Path], markers_path: Path, scale: str, out: Path) -> int:
    """Write the page; return its size in bytes."""
    from plotly.offline import get_plotlyjs

    experiments = [json.loads(Path(p).read_text()) for p in view_paths]
    data = {"experiments": experiments, "markers": _markers(pd.read_parquet(markers_path))}
    # "<", ">" and "&" escaped as JSON unicode escapes, so that no data can end or confuse the
    # <script> element that holds it (as Django's json_script does)
    payload = json.dumps(data, separators=(",", ":"))
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        payload = payload.replace(char, code)
    html = _fill(TEMPLATE.read_text(), {"SCALE": scale, "PLOTLY": get_plotlyjs(), "DATA": payload})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")  # the page declares utf-8; plotly.js is not ASCII
    tmp.replace(out)
    return out.stat().st_size


def page_scale(path: Path) -> str:
    """The scale a built page shows (from its title)."""
    with open(path, encoding="utf-8") as handle:
        head = handle.read(2000)
    match = re.search(r"<title>alignlab explorer \((\w+) scale\)</title>", head)
    if match is None:
        raise ValueError(f"{path} is not an alignlab explorer page (no title with its scale)")
    return match.group(1)
