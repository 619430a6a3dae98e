"""Experiment configs: load, validate against the experiment's JSON schema, expand into runs.

An experiment's config.yaml has one block per scale (smoke, laptop, paper). Each block has
`defaults` (a full run config), an optional `grid` (lists whose product gives runs, e.g. seeds) and
optional extra `runs` (overrides such as controls). Every run gets a readable id: its swept values
plus a short hash of the resolved config.

Every resolved run of every scale is validated (alignlab.validation) before any work: here, in
the DAG's parse step and `alignlab validate`, and again at each training function's entry
(`check_run`), so a grid value, a control's override or a sweep's defaults are checked as the run
that trains, and a config edited after the plan is caught too.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
from collections.abc import Callable
from pathlib import Path

import yaml

from alignlab.provenance import config_hash
from alignlab.validation import (  # noqa: F401 (ConfigError and validate are this module's API)
    STRICT,
    ConfigError,
    problems,
    raise_problems,
    validate,
)

SCALES = ("smoke", "laptop", "paper")
# The experiments' folders beside the library (a source checkout): training entries look up their
# schema here, wherever Snakemake's working directory is.
EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

# Short names for run ids; keys not listed keep their own name.
_SLUG_NAMES = {
    "weight_decay": "wd",
    "frac_train": "frac",
    "seed": "seed",
    "d_model": "dm",
    "d_mlp": "mlp",
    "attn_rate": "attn",
    "lr": "lr",
    "op": "",
    "p": "p",
}


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping: PyYAML keeps the last one
    silently, so an edit could be overridden by a forgotten line further down."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool | None):  # unhashable: YAML's error
                continue
            if key in seen:
                raise ConfigError(
                    f"invalid YAML {key_node.start_mark.name}: key {key!r} appears twice in one "
                    f"mapping (lines {seen[key]} and {key_node.start_mark.line + 1})"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> dict:
    # what yaml.load does, spelled out: the loader is a SafeLoader (no arbitrary objects)
    with open(path) as fh:
        loader = UniqueKeyLoader(fh)
        try:
            return loader.get_single_data() or {}
        finally:
            loader.dispose()


@dataclasses.dataclass(frozen=True)
class RunSet:
    """How an experiment turns a scale block into the runs it trains, as its config.schema.yaml
    declares under `x-runs` (absent: one `defaults` + `grid` + `runs` per scale):

        x-runs:
          expand: experiments.scaling.sweeps:expand_sweeps   # "module:function", block -> runs
          schema: "#/$defs/scale/properties/defaults"         # the schema of one resolved run
          bookkeeping: [sweep]                                # added keys, not settings

    The expansion is the experiment's own code, named by its own schema, so the library never
    names an experiment; it is imported when used (those modules import this one)."""

    expand: str = "alignlab.config:expand_runs"
    schema: str = "#/$defs/scale/properties/defaults"  # a $ref: local, or a shared fragment
    bookkeeping: tuple[str, ...] = ()

    @classmethod
    def of(cls, schema: dict) -> RunSet:
        declared = schema.get("x-runs", {})
        return cls(
            expand=declared.get("expand", cls.expand),
            schema=declared.get("schema", cls.schema),
            bookkeeping=tuple(declared.get("bookkeeping", ())),
        )

    def runs(self, block: dict) -> dict[str, dict]:
        module, function = self.expand.split(":")
        fn: Callable[[dict], dict[str, dict]] = getattr(importlib.import_module(module), function)
        return fn(block)


def run_problems(name: str, schema: dict, runs: dict[str, dict], scale: str | None) -> list[str]:
    """One line per violation of a resolved run: `invalid NAME config (scale S, run R): ...`."""
    run_set = RunSet.of(schema)
    validator = STRICT({"$defs": schema.get("$defs", {}), "$ref": run_set.schema})
    where = f"scale {scale}, " if scale else ""
    lines = []
    for run_id, run in runs.items():
        settings = {k: v for k, v in run.items() if k not in run_set.bookkeeping}
        header = f"invalid {name} config ({where}run {run_id})"
        lines += [f"{header}: {line}" for line in problems(settings, validator)]
    return lines


def load_experiment(experiment_dir: Path, scale: str) -> dict:
    """Validate the whole config and every resolved run of every scale (a grid value is checked
    as the run that trains it); return the chosen scale's block."""
    experiment_dir = Path(experiment_dir)
    name = experiment_dir.name
    if scale not in SCALES:
        raise ConfigError(
            f"invalid {name} config: key scale: value {scale!r} is not allowed: "
            f"must be one of {list(SCALES)}"
        )
    path = experiment_dir / "config.yaml"
    config = load_yaml(path)
    schema = load_yaml(experiment_dir / "config.schema.yaml")
    validate(config, schema, source=f"{name} config ({path})")
    run_set = RunSet.of(schema)
    raise_problems(
        [line for s in SCALES for line in run_problems(name, schema, run_set.runs(config[s]), s)]
    )
    return config[scale]


def resolved_runs(experiment_dir: Path, scale: str) -> dict[str, dict]:
    """{run_id: run} of every run the experiment trains at `scale`, validated."""
    block = load_experiment(experiment_dir, scale)
    schema = load_yaml(Path(experiment_dir) / "config.schema.yaml")
    return RunSet.of(schema).runs(block)


def check_run(run: dict, run_dir: Path, fallback: str) -> None:
    """At a training function's entry, before it writes anything: the run against its
    experiment's run schema (the run may come from a config edited after the plan, or from a
    direct call). run_dir in the DAG's layout, results/<experiment>/<scale>/<kind>/<run_id>,
    names the experiment and scale; otherwise `fallback` names the schema to check against: an
    experiment, or a shared run schema such as "alignlab:modular_run" (library code)."""
    parts = Path(run_dir).parts
    name, scale = fallback, None
    in_layout = len(parts) >= 5 and parts[-5] == "results" and parts[-3] in SCALES
    if in_layout and (EXPERIMENTS / parts[-4] / "config.schema.yaml").exists():
        name, scale = parts[-4], parts[-3]
    if name.startswith("alignlab:"):
        schema = {"x-runs": {"schema": f"{name}#/$defs/run"}}
    else:
        schema = load_yaml(EXPERIMENTS / name / "config.schema.yaml")
    label = name.removeprefix("alignlab:")
    raise_problems(run_problems(label, schema, {Path(run_dir).name: run}, scale))


def check_dag_config(config: dict, allowed: dict[str, list[str]]) -> None:
    """Snakemake's --config: every key must be one the rules read and every value (each of a
    comma-separated list) one they know, or the run would silently do something else (a typo
    such as scal=smoke would plan the laptop scale, only=grokkin the paper alone)."""
    lines = []
    for key, value in sorted(config.items()):
        if key not in allowed:
            lines.append(
                f"invalid --config: unknown key {key} (value {value!r}); "
                f"allowed keys: {sorted(allowed)}"
            )
            continue
        items = [i for i in str(value).split(",") if i] if key == "only" else [str(value)]
        for item in items:
            if item not in allowed[key]:
                lines.append(
                    f"invalid --config: key {key}: value {item!r} is not allowed: "
                    f"must be one of {sorted(allowed[key])}"
                )
    raise_problems(lines)


def dataclass_from(cls, values: dict, what: str):
    """Build the dataclass `cls` from a dict, naming any key it does not know."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; allowed: {sorted(known)}")
    return cls(**values)


# Keys of a run entry that say what the run is for, not how it trains: they stay out of the
# resolved config (so out of its hash) and, but for the label, out of the run id.
_NOT_SETTINGS = ("label", "role")
# What a run is for: the runs a claim is about (every seed of the published setting), the runs
# where it is false by design (no weight decay, a frozen model), points of a sweep, constructed
# nulls. Tables carry it as runs.parquet's `role`, so no code picks a run by a config value.
ROLES = ("canonical", "control", "sweep", "null")


def run_slug(overrides: dict) -> str:
    parts = [
        f"{_SLUG_NAMES.get(k, k)}{v}"
        for k, v in sorted(overrides.items())
        if k not in _NOT_SETTINGS
    ]
    if "label" in overrides:
        parts.insert(0, str(overrides["label"]))
    return "-".join(parts) or "base"


def _expand(block: dict) -> list[tuple[str, dict, str]]:
    """(run_id, resolved run config, role) for the grid product plus the extra runs. Grid runs
    take the block's `role` (default canonical), extra runs their own (default control)."""
    grid = block.get("grid", {})
    keys = sorted(grid)
    overrides = [
        (dict(zip(keys, values, strict=True)), block.get("role", "canonical"))
        for values in itertools.product(*(grid[k] for k in keys))
    ]
    overrides += [(dict(extra), extra.get("role", "control")) for extra in block.get("runs", [])]
    expanded = []
    for override, role in overrides:
        settings = {k: v for k, v in override.items() if k not in _NOT_SETTINGS}
        resolved = {**block["defaults"], **settings}
        expanded.append((f"{run_slug(override)}-{config_hash(resolved)}", resolved, role))
    return expanded


def expand_runs(block: dict) -> dict[str, dict]:
    """{run_id: resolved run config} for the grid product plus the extra runs."""
    return {run_id: run for run_id, run, _ in _expand(block)}


def run_roles(block: dict) -> dict[str, str]:
    """{run_id: role} of the runs `expand_runs` gives (see ROLES)."""
    return {run_id: role for run_id, _, role in _expand(block)}
