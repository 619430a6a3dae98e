"""Experiment configs: load, validate against the experiment's JSON schema, expand into runs.

An experiment's config.yaml has one block per scale (smoke, laptop, paper). Each block has
`defaults` (a full run config), an optional `grid` (lists whose product gives runs, e.g. seeds) and
optional extra `runs` (overrides such as controls). Every run gets a readable id: its swept values
plus a short hash of the resolved config.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import jsonschema
import yaml

from alignlab.provenance import config_hash

SCALES = ("smoke", "laptop", "paper")

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


class ConfigError(ValueError):
    """A config that does not match its schema; the message names the key and the value."""


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        return f"unknown key {', '.join(where + u for u in unknown)!s}; allowed keys: {allowed}"
    if "propertyNames" in error.absolute_schema_path:  # a key outside the schema's key list
        allowed = error.validator_value if error.validator == "enum" else "see the schema"
        return f"unknown key {key}.{error.instance}; allowed keys: {allowed}"
    if error.validator == "required":
        return f"key {key}: {error.message}"
    return f"key {key}: value {error.instance!r} is not allowed: {error.message}"


def validate(config: dict, schema: dict, source: str = "config") -> None:
    """Raise ConfigError listing every violation, each naming the key, the value and the rule."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"invalid {source}:\n{lines}")


def load_yaml(path: Path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def load_experiment(experiment_dir: Path, scale: str) -> dict:
    """Validate the whole config (every scale) and return the chosen scale's block."""
    experiment_dir = Path(experiment_dir)
    if scale not in SCALES:
        raise ConfigError(f"invalid config: key scale: value {scale!r} is not one of {SCALES}")
    config = load_yaml(experiment_dir / "config.yaml")
    schema = load_yaml(experiment_dir / "config.schema.yaml")
    validate(config, schema, source=f"{experiment_dir / 'config.yaml'}")
    return config[scale]


def dataclass_from(cls, values: dict, what: str):
    """Build the dataclass `cls` from a dict, naming any key it does not know."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; allowed: {sorted(known)}")
    return cls(**values)


def run_slug(overrides: dict) -> str:
    parts = [f"{_SLUG_NAMES.get(k, k)}{v}" for k, v in sorted(overrides.items()) if k != "label"]
    if "label" in overrides:
        parts.insert(0, str(overrides["label"]))
    return "-".join(parts) or "base"


def expand_runs(block: dict) -> dict[str, dict]:
    """{run_id: resolved run config} for the grid product plus the extra runs."""
    grid = block.get("grid", {})
    keys = sorted(grid)
    overrides = [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]
    overrides += [dict(extra) for extra in block.get("runs", [])]
    runs = {}
    for override in overrides:
        resolved = {**block["defaults"], **{k: v for k, v in override.items() if k != "label"}}
        run_id = f"{run_slug(override)}-{config_hash(resolved)}"
        runs[run_id] = resolved
    return runs
