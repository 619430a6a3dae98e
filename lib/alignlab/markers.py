"""Published vs reproduced: evaluate each experiment's markers.yaml on its runs and on its null.

A marker (one entry of experiments/<name>/markers.yaml, schema in markers.schema.yaml) is a
published claim with a rule that decides it. Values come from the experiment's
`markers.parquet` (run_id, marker, value) joined with `runs.parquet` (run_id, seed, config ...).

The rule is applied to *replicates*: each selected run (`per: run`), each seed (`per: seed`, the
`aggregate` of its runs' values) or one value pooled over all selected runs (`per: pooled`).
A replicate holds when its value is finite and
- range:    low <= value <= high;
- number:   |value - published| <= tolerance;
- ordering: second - first > gap (gap in the events' own units, or `gap` x a per-run column
            named by `gap_unit`, e.g. two evaluation intervals).
The marker holds when all replicates do (or the share in `require`), over at least MIN_SEEDS
distinct seeds outside the smoke scale. A NaN or missing value is a replicate that does not
hold: it is shown, never dropped, and aggregates propagate it.

Every finding names a `null`: runs on which the claim is false (the wd = 0 control, random init,
a same-size split ...), or a constructed value on the same runs (`null.value`, e.g. the steps
against shifted training fractions). The same rule is evaluated there and must fail in most of
the null's replicates (null_verdict); if it holds in half or more, the marker cannot tell the
claim from its absence and reads "cannot fail"; if the null's values are all undefined (NaN: the
quantity does not exist there) it tests nothing and reads "null undefined". Neither counts as a
finding. The null only certifies a claim that holds: a claim that fails on its own runs reads
"fails", with its null's verdict still shown beside it.
Markers marked `control: true` are sanity checks that are true by construction: they go to the
controls table and are never counted as reproduced findings.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.config import load_yaml, validate

SCHEMA = Path(__file__).with_name("markers.schema.yaml")
COLUMNS = [
    "experiment",
    "id",
    "control",
    "claim",
    "published",
    "source",
    "where",
    "rule",
    "margin",
    "reproduced",
    "replicates",
    "seeds",
    "null",
    "null_reproduced",
    "status",
]
STATUSES = (
    "holds",
    "fails",
    "cannot fail",
    "null undefined",
    "too few seeds",
    "not run at this scale",
)
# A finding rests on at least this many distinct seeds at the laptop and paper scales (the smoke
# scale only checks the pipeline); fewer reads "too few seeds" and counts as no finding.
MIN_SEEDS = 3
# NaN-propagating aggregates: a replicate with a NaN run is NaN (never silently dropped).
AGGREGATES = {"min": np.min, "max": np.max, "mean": np.mean, "median": np.median}


def load_specs(path: Path) -> list[dict]:
    specs = load_yaml(path) or []
    for spec in specs:  # YAML reads the key `null:` as None; the schema names it "null"
        if isinstance(spec, dict) and None in spec:
            spec["null"] = spec.pop(None)
    # finite=False: open-ended ranges are written with +-inf (`high: .inf`)
    validate(specs, load_yaml(SCHEMA), source=str(path), finite=False)
    return specs


def _columns(spec: dict) -> list[str]:
    if spec["kind"] == "ordering":
        return list(spec["events"]) + ([spec["gap_unit"]] if "gap_unit" in spec else [])
    return [spec["value"]]


def _wide(values: pd.DataFrame) -> pd.DataFrame:
    """run_id x marker. Two values for one (run, marker) are an error, never averaged."""
    duplicated = values[values.duplicated(["run_id", "marker"], keep=False)]
    if len(duplicated):
        pairs = sorted(set(zip(duplicated.run_id, duplicated.marker, strict=True)))[:5]
        raise ValueError(f"markers.parquet holds more than one value for (run_id, marker): {pairs}")
    return values.set_index(["run_id", "marker"])["value"].astype(float).unstack()


def _selected(wide: pd.DataFrame, runs: pd.DataFrame, query: str, columns) -> pd.DataFrame:
    """Selected runs as rows with their seed and the marker columns (NaN where a run has no
    value). A column may also come from runs.parquet; a name in neither table is an error."""
    selected = runs.query(query).set_index("run_id")
    unknown = [c for c in columns if c not in wide.columns and c not in runs.columns]
    if unknown and len(wide.columns):
        raise KeyError(f"no marker or run column named {unknown}")
    out = wide.reindex(index=selected.index, columns=columns)  # missing -> NaN, never dropped
    for column in columns:
        if column in selected.columns and column not in wide.columns:
            out[column] = selected[column].astype(float)
    if selected.seed.isna().any():
        missing = list(selected.index[selected.seed.isna()])
        raise ValueError(f"runs without a seed in {query!r}: {missing}")
    return out.join(selected[["seed"]])


def _per_run(spec: dict, table: pd.DataFrame) -> pd.DataFrame:
    """The quantity each run is judged on: `value`, or for an ordering the lead (second - first)
    and the margin it must exceed, so that aggregates never pair one run's event with another's."""
    if spec["kind"] != "ordering":
        return table[[spec["value"]]].astype(float)
    first, second = spec["events"]
    gap = spec.get("gap", 0.0) * (table[spec["gap_unit"]] if "gap_unit" in spec else 1.0)
    lead = table[second] - table[first]
    return pd.DataFrame({"lead": lead, "excess": lead - gap}, index=table.index).astype(float)


def replicates(spec: dict, table: pd.DataFrame) -> pd.DataFrame:
    """One row per replicate: its label, seeds, and the judged columns (aggregated if grouped)."""
    per_run = _per_run(spec, table)
    per = spec.get("per", "run")
    if per == "run":
        out = per_run.copy()
        # several runs of one seed (e.g. two attention rates) are told apart by their run ids
        unique = not table.seed.duplicated().any()
        out["label"] = [f"seed {int(s)}" if unique else rid for rid, s in table.seed.items()]
        out["seeds"] = [[int(s)] for s in table.seed]
        return out.reset_index(drop=True)
    agg = AGGREGATES[spec["aggregate"]]
    grouped = per_run.join(table.seed)
    groups = grouped.groupby("seed", sort=True) if per == "seed" else [("pooled", grouped)]
    rows = []
    for key, group in groups:
        row = {c: float(agg(group[c].to_numpy(dtype=float))) for c in per_run.columns}
        label = f"seed {int(key)}" if per == "seed" else _pooled_label(spec, group[per_run.columns])
        rows.append(row | {"label": label, "seeds": sorted({int(s) for s in group.seed})})
    return pd.DataFrame(rows)


def _pooled_label(spec: dict, values: pd.DataFrame) -> str:
    """A summary stored on every run of a sweep is one value, not one per run: say so."""
    if len(values.drop_duplicates()) == 1:
        return f"one value on {len(values)} run{'s' if len(values) > 1 else ''}"
    return f"{spec['aggregate']} of {len(values)} runs"


def _holds(spec: dict, row) -> tuple[bool, float]:
    """(holds, the value shown) for one replicate. Non-finite never holds."""
    if spec["kind"] == "ordering":
        return bool(np.isfinite(row["excess"]) and row["excess"] > 0), row["lead"]
    value = row[spec["value"]]
    if spec["kind"] == "range":
        low, high = float(spec["low"]), float(spec["high"])
    else:
        low = float(spec["published"]) - spec["tolerance"]
        high = float(spec["published"]) + spec["tolerance"]
    # +/-inf holds only against an open (infinite) bound; NaN never holds
    return bool(not np.isnan(value) and low <= value <= high), value


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    # four significant digits, so that a value just outside a threshold never prints on it
    return f"{x:.0f}" if abs(x) >= 1000 or float(x).is_integer() else f"{x:.4g}"


def _required(spec: dict, n: int) -> int:
    require = spec.get("require", "all")
    return n if require == "all" else math.ceil(float(require) * n - 1e-9)


def judge(spec: dict, table: pd.DataFrame) -> dict:
    """Apply the rule to the replicates of `table`: text, k/N, seeds and holds (bool)."""
    if table.empty:
        return {"text": "no runs", "k": 0, "n": 0, "defined": 0, "seeds": [], "holds": False}
    reps = replicates(spec, table)
    verdicts = [_holds(spec, row) for _, row in reps.iterrows()]
    k, n = sum(ok for ok, _ in verdicts), len(verdicts)
    if n <= 4:
        text = "; ".join(
            f"{label}: {_fmt(v)}{'' if ok else ' (x)'}"
            for label, (ok, v) in zip(reps.label, verdicts, strict=True)
        )
    else:  # many replicates: a count, the median and the range keep the table readable
        shown = np.array([v for _, v in verdicts], dtype=float)
        finite = shown[np.isfinite(shown)]
        text = f"median {_fmt(np.median(shown))}" if finite.size == n else f"{n - finite.size} n/a"
        if finite.size:
            text += f", range {_fmt(finite.min())} to {_fmt(finite.max())}"
    seeds = sorted({s for row in reps.seeds for s in row})
    n_defined = sum(not np.isnan(v) for _, v in verdicts)
    holds = k >= _required(spec, n)
    return {"text": text, "k": k, "n": n, "defined": n_defined, "seeds": seeds, "holds": holds}


def rule_text(spec: dict) -> str:
    """The decision rule in words, as the table prints it."""
    if spec["kind"] == "ordering":
        first, second = spec["events"]
        gap = spec.get("gap", 0.0)
        unit = f" x {spec['gap_unit']}" if "gap_unit" in spec else ""
        test = f"{second} - {first} > {_fmt(gap)}{unit}"
    elif spec["kind"] == "number":
        test = f"{spec['value']} = {_fmt(float(spec['published']))} +/- {_fmt(spec['tolerance'])}"
    else:
        low, high = float(spec["low"]), float(spec["high"])
        value = spec["value"]
        if math.isinf(high):
            test = f"{value} >= {_fmt(low)}"
        elif math.isinf(low):
            test = f"{value} <= {_fmt(high)}"
        else:
            test = f"{_fmt(low)} <= {value} <= {_fmt(high)}"
    per = spec.get("per", "run")
    head = {"run": "each run", "seed": f"each seed ({spec.get('aggregate')} of its runs)"}
    head = head.get(per, f"{spec.get('aggregate')} over runs")
    require = spec.get("require", "all")
    share = "all hold" if require == "all" else f">= {float(require):.0%} hold"
    return f"{head}: {test}; {share}"


def seed_ranges(seeds) -> str:
    """Sorted distinct seeds with runs of consecutive ones shortened: 0,1,2,3,7 -> "0-3,7"."""
    values = sorted({int(s) for s in seeds})
    parts, start = [], None
    for i, seed in enumerate(values):
        start = seed if start is None else start
        if i + 1 == len(values) or values[i + 1] != seed + 1:
            parts.append(str(seed) if seed == start else f"{start}-{seed}")
            start = None
    return ",".join(parts)


def _unit(spec: dict) -> str:
    return {"run": "runs", "seed": "seeds"}.get(spec.get("per", "run"), "pooled")


def evaluate_marker(spec: dict, wide: pd.DataFrame, runs: pd.DataFrame, min_seeds=1) -> dict:
    """Reproduced value, k/N, seeds, the null's verdict and the status of one marker. `wide` is
    the experiment's markers as run_id x marker (`wide_values`)."""
    real = judge(spec, _selected(wide, runs, spec["runs"], _columns(spec)))
    row = {
        "reproduced": real["text"],
        "replicates": f"{real['k']}/{real['n']} {_unit(spec)}",
        "seeds": seed_ranges(real["seeds"]),
    }
    if spec.get("control"):
        return row | {"null": "", "null_reproduced": "", "status": _status(real["holds"])}
    overrides = {k: spec["null"][k] for k in ("value", "aggregate") if k in spec["null"]}
    null_spec = spec | overrides
    null = judge(null_spec, _selected(wide, runs, spec["null"]["runs"], _columns(null_spec)))
    outcome, verdict = null_verdict(null)
    status = _finding_status(real["holds"], outcome)
    if status in ("holds", "fails") and len(real["seeds"]) < min_seeds:
        status = "too few seeds"
    where = spec["null"]["runs"] + (f" ({', '.join(overrides.values())})" if overrides else "")
    null_text = f"{verdict} on {where}: {spec['null']['why']}"
    return row | {"null": null_text, "null_reproduced": null["text"], "status": status}


def null_verdict(null: dict) -> tuple[str, str]:
    """(outcome, text): the rule on the null must fail in most of its replicates, on values that
    exist there. A null whose values are all undefined (NaN) tests nothing ("undefined"); one
    that holds in half or more of its replicates cannot tell the claim from its absence."""
    if null["n"] == 0:
        return "none", "no null runs"
    if null["defined"] == 0:
        return "undefined", f"undefined ({null['n']} n/a)"
    if 2 * null["k"] >= null["n"]:
        return "holds", f"HOLDS ({null['k']}/{null['n']})"
    return "fails", f"fails ({null['k']}/{null['n']})"


def _finding_status(holds: bool, null_outcome: str) -> str:
    """A claim that fails on its own runs fails, whatever its null says (the null column still
    shows the null's verdict); one that holds is a finding only if its null fails."""
    if not holds:
        return "fails"
    return {"fails": "holds", "undefined": "null undefined"}.get(null_outcome, "cannot fail")


def _status(holds: bool) -> str:
    return "holds" if holds else "fails"


def wide_values(values: pd.DataFrame) -> pd.DataFrame:
    """markers.parquet as run_id x marker, built once per experiment."""
    return _wide(values) if len(values) else pd.DataFrame(index=pd.Index([], name="run_id"))


def evaluate(experiment: str, specs: list[dict], values, runs, scale: str) -> pd.DataFrame:
    """One row per marker: the claim, its source, rule, reproduced value, null and status."""
    wide = wide_values(values)
    rows = []
    for spec in specs:
        row = {
            "experiment": experiment,
            "id": spec["id"],
            "control": bool(spec.get("control", False)),
            "claim": spec["claim"],
            "published": str(spec["published"]),
            "source": spec["source"]["paper"],
            "where": spec["source"].get("where", ""),
            "rule": rule_text(spec),
            "margin": spec.get("margin", ""),
        }
        if scale not in spec["scales"]:
            empty = dict.fromkeys(
                ("reproduced", "replicates", "seeds", "null", "null_reproduced"), ""
            )
            rows.append(row | empty | {"status": "not run at this scale"})
            continue
        min_seeds = 1 if scale == "smoke" else MIN_SEEDS
        rows.append(row | evaluate_marker(spec, wide, runs, min_seeds))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"control": bool})


def evaluate_experiment(experiment, specs_path, values_path, runs_path, scale, out) -> None:
    """Rule entry point: write the experiment's published-vs-reproduced table."""
    table = evaluate(
        experiment,
        load_specs(specs_path),
        pd.read_parquet(values_path),
        pd.read_parquet(runs_path),
        scale,
    )
    table.to_parquet(out, index=False)
