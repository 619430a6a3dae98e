"""One validator for configs and resolved runs, and one message format for what it finds.

JSON schema does the types and bounds. What it gets wrong or cannot say is fixed here, once:
- `integer` means a Python int: JSON schema counts 23.0 as an integer, but YAML loads `23.0` as a
  float, which then fails in range() or as a tensor size far from the config. bool is never a
  number (YAML's `yes`/`true`).
- `number` means a finite number: every comparison with NaN is false, so NaN (and +-inf, which
  passes every lower bound) would satisfy every bound in the schemas.
- `oddPrime: true` on a key: its value must be an odd prime (the Fourier measures work on Z_p).
- `trainTestSplit: modular | pairs` on a run: the run's split must leave at least one training
  and one test example (a too-small fraction otherwise surfaces as a loss blamed on the lr).

Every message names the experiment, the scale and run where there is one, the key, the value and
what is allowed, e.g. `invalid grokking config (scale smoke, run dm0-seed0-ab12cd): key d_model:
value 0 is not allowed: must be >= 1`.
"""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import yaml
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

# Values shown per error; a grid that breaks hundreds of runs still gives a readable message.
MAX_LINES = 20


class ConfigError(ValueError):
    """A config that does not match its schema; the message names the key and the value."""


def _is_int(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_finite_number(checker, instance) -> bool:
    if isinstance(instance, bool) or not isinstance(instance, int | float):
        return False
    return isinstance(instance, int) or math.isfinite(instance)


def _odd_prime(n: int) -> bool:
    if n < 3 or n % 2 == 0:
        return False
    return all(n % k for k in range(3, math.isqrt(n) + 1, 2))


def _check_odd_prime(validator, wanted, instance, schema):
    # Above 10**12 trial division is slow; `maximum` refuses such values with its own reason.
    if wanted and _is_int(None, instance) and instance < 10**12 and not _odd_prime(instance):
        yield ValidationError("must be an odd prime")


def modular_split(p: int, op: str, frac_train: float) -> tuple[int, int]:
    """(train, test) pairs of alignlab.data.build_dataset: every (a, b) (b != 0 for division),
    int(frac_train * n) of them for training (tests/test_validation.py checks it matches)."""
    from alignlab.data import OPERATIONS

    n = p * (p - 1) if OPERATIONS.get(op, (None, False))[1] else p * p
    n_train = int(frac_train * n)
    return n_train, n - n_train


def pairs_split(n_pairs: int, heldout_frac: float) -> tuple[int, int]:
    """(train, held-out) pairs of alignlab.preference.train.split_pairs (same rounding)."""
    n_test = max(1, int(round(n_pairs * heldout_frac)))
    return n_pairs - n_test, n_test


def _split_of(kind: str, run: dict):
    """(key to blame, train, test, what was split), or None while the inputs are themselves bad
    (their own errors are reported instead)."""
    fraction = lambda key: _is_finite_number(None, run.get(key)) and 0 < run[key] < 1  # noqa: E731
    p = run.get("p")
    if kind == "modular" and _is_int(None, p) and 3 <= p <= 10**6 and fraction("frac_train"):
        op = run.get("op", "add")
        n_train, n_test = modular_split(p, op, run["frac_train"])
        return "frac_train", n_train, n_test, f"{n_train + n_test} pairs (p {p}, {op})"
    if kind == "pairs" and _is_int(None, run.get("n_pairs")) and fraction("heldout_frac"):
        n_train, n_test = pairs_split(run["n_pairs"], run["heldout_frac"])
        return "heldout_frac", n_train, n_test, f"{run['n_pairs']} pairs (n_pairs)"
    return None


def _check_split(validator, kind, instance, schema):
    found = _split_of(kind, instance) if isinstance(instance, dict) else None
    if found is None:
        return
    key, n_train, n_test, of = found
    if n_train < 1 or n_test < 1:
        yield ValidationError(
            f"leaves {n_train} training and {n_test} test examples of {of}; each needs at least 1",
            path=[key],
            instance=instance[key],
        )


def _validator_class(finite: bool):
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int)
    if finite:
        checker = checker.redefine("number", _is_finite_number)
    return jsonschema.validators.extend(
        Draft202012Validator,
        validators={"oddPrime": _check_odd_prime, "trainTestSplit": _check_split},
        type_checker=checker,
    )


# Schema fragments several experiments share (lib/alignlab/schemas/*.schema.yaml), each under its
# `$id`, e.g. "alignlab:modular_run": an experiment's schema refers to "alignlab:modular_run#/...".
SHARED_SCHEMAS = Path(__file__).resolve().parent / "schemas"


def _shared_registry() -> Registry:
    resources = []
    for path in sorted(SHARED_SCHEMAS.glob("*.schema.yaml")):
        contents = yaml.safe_load(path.read_text())
        resources.append((contents["$id"], DRAFT202012.create_resource(contents)))
    return Registry().with_resources(resources)


REGISTRY = _shared_registry()


def _bind(cls):
    """The validator class with the shared fragments resolvable by their $id."""
    return lambda schema: cls(schema, registry=REGISTRY)


STRICT = _bind(_validator_class(finite=True))
# For files where +-inf is meaningful (open-ended marker ranges): integers are still ints.
ALLOW_INF = _bind(_validator_class(finite=False))

_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a finite number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def _key_path(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def _rule(error: ValidationError) -> str:
    """What is allowed, in words (jsonschema's own message where it already says it)."""
    if error.validator in _BOUNDS:
        rule = f"must be {_BOUNDS[error.validator]} {error.validator_value}"
    elif error.validator == "type":
        types = error.validator_value
        types = [types] if isinstance(types, str) else types
        rule = "must be " + " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    elif error.validator == "enum":
        rule = f"must be one of {error.validator_value}"
    elif error.validator == "pattern":
        rule = f"must match {error.validator_value!r}"
    else:
        rule = error.message
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description and not isinstance(error.instance, dict | list):
        rule += f" ({description.strip()})"
    return rule


def describe(error: ValidationError) -> str:
    """`key K: value V is not allowed: RULE`, or the unknown / missing key and the allowed ones."""
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
    return f"key {key}: value {error.instance!r} is not allowed: {_rule(error)}"


def problems(instance, validator) -> list[str]:
    """Every violation of `instance`, described, in key order."""
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    return [describe(error) for error in errors]


def raise_problems(lines: list[str]) -> None:
    """ConfigError with one self-contained line per violation (the first MAX_LINES)."""
    if not lines:
        return
    shown = lines[:MAX_LINES]
    if len(lines) > MAX_LINES:
        shown.append(f"... and {len(lines) - MAX_LINES} more")
    raise ConfigError("\n".join(shown))


def validate(config, schema: dict, source: str = "config", finite: bool = True) -> None:
    """Raise ConfigError listing every violation, each naming the key, the value and the rule."""
    validator = (STRICT if finite else ALLOW_INF)(schema)
    raise_problems([f"invalid {source}: {line}" for line in problems(config, validator)])
