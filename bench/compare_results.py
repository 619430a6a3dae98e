"""Did a refactor change a result? Snapshot the tables a scale produced, rerun, compare.

    python bench/compare_results.py save /tmp/before            # after `make reproduce`
    (change the code; `make reproduce` again)
    python bench/compare_results.py compare /tmp/before         # exit 1 if anything differs

Compared: every experiment's numbers.json (each value) and markers.parquet (each run and marker,
matched by run id and marker: run ids are hashes of configs and stay the same), the combined marker
table (results/paper/<scale>/markers.parquet, row by row), and the findings and controls tables
(paper/generated/*.tex). Training is deterministic on one machine, so the values
must be equal, not close: NaN equals NaN, nothing else is forgiven.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TABLES = ("markers_table.tex", "controls_table.tex")


def _files(scale: str) -> dict[str, Path]:
    found = {}
    for path in sorted((REPO / "results").glob(f"*/{scale}/numbers.json")):
        found[f"{path.parts[-3]}/numbers.json"] = path
    for path in sorted((REPO / "results").glob(f"*/{scale}/markers.parquet")):
        found[f"{path.parts[-3]}/markers.parquet"] = path
    for name in TABLES:
        found[name] = REPO / "paper" / "generated" / name
    return found


def save(directory: Path, scale: str) -> None:
    for name, path in _files(scale).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    print(f"saved {len(_files(scale))} files to {directory}")


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _diff_numbers(before: Path, after: Path) -> list[str]:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if not _same(old.get(k), new.get(k))
    ]


def _diff_table(old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """The paper's marker table (one row per marker): rows whose text differs."""
    old_rows = old.astype(str).agg(" | ".join, axis=1).tolist()
    new_rows = new.astype(str).agg(" | ".join, axis=1).tolist()
    if len(old_rows) != len(new_rows):
        return [f"{len(old_rows)} rows -> {len(new_rows)} rows"]
    return [f"{a}\n    -> {b}" for a, b in zip(old_rows, new_rows, strict=True) if a != b]


def _diff_markers(before: Path, after: Path) -> list[str]:
    index = ["run_id", "marker"]
    if "run_id" not in pd.read_parquet(before).columns:
        return _diff_table(pd.read_parquet(before), pd.read_parquet(after))
    old = pd.read_parquet(before).set_index(index).value
    new = pd.read_parquet(after).set_index(index).value
    both = old.index.union(new.index)
    old, new = old.reindex(both), new.reindex(both)
    return [
        f"{rid} {marker}: {a!r} -> {b!r}"
        for (rid, marker), a, b in zip(both, old, new, strict=True)
        if not _same(float(a), float(b))
    ]


def compare(directory: Path, scale: str) -> int:
    differences = 0
    for name, path in _files(scale).items():
        before = directory / name
        if not before.exists():
            print(f"{name}: new (not in the snapshot)")
            continue
        if name.endswith(".json"):
            lines = _diff_numbers(before, path)
        elif name.endswith(".parquet"):
            lines = _diff_markers(before, path)
        else:
            lines = [] if before.read_text() == path.read_text() else ["text differs"]
        differences += len(lines)
        print(f"{name}: {'identical' if not lines else f'{len(lines)} differences'}")
        for line in lines[:20]:
            print(f"    {line}")
    print("no result changed" if not differences else f"{differences} values changed")
    return 1 if differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--scale", default="laptop")
    args = parser.parse_args()
    if args.action == "save":
        save(args.directory, args.scale)
        return 0
    return compare(args.directory, args.scale)


if __name__ == "__main__":
    sys.exit(main())
