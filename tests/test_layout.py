"""The house layout: the library never imports an experiment; no function outgrows a screen."""

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from alignlab.paper import reading_order

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module or "")
    return found


def test_the_library_imports_no_experiment():
    offenders = {
        str(path.relative_to(REPO)): sorted(
            m for m in _imports(path) if m.startswith("experiments")
        )
        for path in (REPO / "lib" / "alignlab").rglob("*.py")
        if "templates" not in path.parts  # files the scaffold fills in, not importable code
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_check_sees_an_experiment_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from experiments.circuits import spectra\n")
    assert "experiments.circuits" in _imports(module)


EXPERIMENT_FILES = (
    "__init__.py",
    "config.yaml",
    "config.schema.yaml",
    "rules.smk",
    "markers.yaml",
    "paper.tex",
    "README.md",
    "tests/__init__.py",
)


def test_every_experiment_is_one_folder_with_its_parts():
    folders = sorted(path.parent for path in (REPO / "experiments").glob("*/rules.smk"))
    assert len(folders) >= 7
    for folder in folders:
        missing = [name for name in EXPERIMENT_FILES if not (folder / name).exists()]
        assert missing == [], f"{folder.name} lacks {missing}"
        assert list((folder / "tests").glob("test_*.py")), f"{folder.name} has no tests"


def test_no_library_module_is_named_after_an_experiment():
    experiments = {path.parent.name for path in (REPO / "experiments").glob("*/rules.smk")}
    library = {path.stem for path in (REPO / "lib" / "alignlab").rglob("*.py")}
    library |= {path.name for path in (REPO / "lib" / "alignlab").iterdir() if path.is_dir()}
    assert library & experiments == set()


def _function_lengths_check():
    """bench/function_lengths.py, loaded by path: bench/ is scripts, not a package."""
    path = REPO / "bench" / "function_lengths.py"
    spec = importlib.util.spec_from_file_location("function_lengths", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_function_is_longer_than_a_screen():
    check = _function_lengths_check()
    offenders = [f"{lines} {file} {name}" for lines, file, name in check.too_long(limit=60)]
    assert offenders == []


def test_the_length_check_counts_from_def_to_last_line(tmp_path):
    check = _function_lengths_check()
    module = tmp_path / "m.py"
    module.write_text(
        'def f():\n    """Doc."""\n    return 1\n\n\nclass C:\n    def g(self):\n        pass\n'
    )
    assert check.function_lengths(module) == [(3, "f"), (2, "C.g")]


def test_the_papers_reading_order_lists_every_section_once():
    sections = sorted(p.parent.name for p in (REPO / "experiments").glob("*/paper.tex"))
    declared = yaml.safe_load((REPO / "paper/order.yaml").read_text())["sections"]
    assert sorted(declared) == sections and len(set(declared)) == len(declared)
    assert reading_order(REPO, ["scaling", "grokking"]) == ["grokking", "scaling"]
    with pytest.raises(ValueError, match=r"sections \['unlisted'\] are not in the paper's reading"):
        reading_order(REPO, ["grokking", "unlisted"])


def test_every_figure_and_table_of_the_paper_is_referenced_in_its_text():
    sources = [REPO / "paper/main.tex", *sorted((REPO / "experiments").glob("*/paper.tex"))]
    text = "\n".join(path.read_text() for path in sources)
    labels = set(re.findall(r"\\label\{((?:fig|tab):[^}]+)\}", text))
    referenced = set(re.findall(r"\\(?:ref|autoref|cref)\{([^}]+)\}", text))
    assert labels and sorted(labels - referenced) == []
