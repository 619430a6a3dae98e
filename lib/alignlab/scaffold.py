"""`alignlab new-experiment NAME`: a new experiment folder that runs in the DAG at once.

Writes experiments/NAME/ and nothing else: config with smoke/laptop/paper blocks, schema, rules,
scripts, markers, paper section, report caption, README, its science code (process.py) and its
tests (tests/test_NAME.py), from the templates beside this file; and appends NAME to the paper's
reading order (paper/order.yaml), at the end, for its author to move where the section belongs.
The Snakefile discovers experiments/*/rules.smk, pytest collects experiments/*/tests, and the
paper picks up every experiment with a markers.yaml.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from alignlab.paper import ORDER, macro_name

TEMPLATES = Path(__file__).with_name("templates")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_name(name: str, root: Path) -> None:
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(
            f"experiment name {name!r} must be a lowercase Python identifier (letters, digits, _)"
        )
    candidates = (root / "experiments" / name,)
    taken = [path for path in candidates if path.exists()]
    if taken:
        raise FileExistsError(f"experiment name {name!r} is taken: {', '.join(map(str, taken))}")


def _render(source: Path, target: Path, values: dict) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(Template(source.read_text()).substitute(values))
    return target


def new_experiment(name: str, root: Path) -> list[Path]:
    """Create the experiment; return the files written."""
    root = Path(root)
    check_name(name, root)
    values = {
        "name": name,
        "upper": name.upper(),
        "title": name.replace("_", " ").capitalize(),
        "tex_name": name.replace("_", r"\_"),
        "n_runs_macro": macro_name(name, "n_runs"),
        "final_value_macro": macro_name(name, "final_value"),
    }
    experiment = TEMPLATES / "experiment"
    written = [
        _render(
            path, root / "experiments" / name / _target(path.relative_to(experiment), name), values
        )
        for path in sorted(experiment.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    order = root / ORDER
    order.write_text(order.read_text().rstrip("\n") + f"\n  - {name}\n")
    return written


def _target(relative: Path, name: str) -> Path:
    """A template's path in the new folder: NAME in a file name becomes the experiment's name."""
    return relative.with_name(relative.name.replace("NAME", name))
