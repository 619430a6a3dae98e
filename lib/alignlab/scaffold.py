"""`alignlab new-experiment NAME`: a new experiment folder that runs in the DAG at once.

Writes experiments/NAME/ (config with smoke/laptop/paper blocks, schema, rules, scripts, markers,
paper section, report caption, README), lib/alignlab/NAME.py and tests/test_NAME.py from the
templates beside this file. Nothing else changes: the Snakefile discovers experiments/*/rules.smk
and the paper picks up every experiment with a markers.yaml.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from alignlab.paper import macro_name

TEMPLATES = Path(__file__).with_name("templates")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_name(name: str, root: Path) -> None:
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(
            f"experiment name {name!r} must be a lowercase Python identifier (letters, digits, _)"
        )
    lib = root / "lib" / "alignlab"
    candidates = (root / "experiments" / name, lib / f"{name}.py", lib / name)
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
        "module": name,
        "upper": name.upper(),
        "title": name.replace("_", " ").capitalize(),
        "tex_name": name.replace("_", r"\_"),
        "n_runs_macro": macro_name(name, "n_runs"),
        "final_value_macro": macro_name(name, "final_value"),
    }
    experiment = TEMPLATES / "experiment"
    written = [
        _render(path, root / "experiments" / name / path.relative_to(experiment), values)
        for path in sorted(experiment.rglob("*"))
        if path.is_file()
    ]
    module = root / "lib" / "alignlab" / f"{name}.py"
    written.append(_render(TEMPLATES / "module.py", module, values))
    written.append(
        _render(TEMPLATES / "test_module.py", root / "tests" / f"test_{name}.py", values)
    )
    return written
