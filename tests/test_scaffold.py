"""`alignlab new-experiment` writes an experiment that the DAG plans at once."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alignlab.scaffold import new_experiment

pytestmark = pytest.mark.workflow  # runs Snakemake: `pytest -m "not workflow"` skips it

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_copy(tmp_path):
    # Sources only: no generated paper files or figures from a local run.
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy(REPO / "Snakefile", tmp_path / "Snakefile")
    (tmp_path / "paper").mkdir()
    for name in ("main.tex", "references.bib", "order.yaml"):
        shutil.copy(REPO / "paper" / name, tmp_path / "paper" / name)
    for name in ("experiments", "lib", "profiles", "paper/scripts", "paper/report"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=ignore)
    shutil.copy(REPO / "paper" / "rules.smk", tmp_path / "paper" / "rules.smk")
    (tmp_path / "tests").mkdir()
    return tmp_path


def _run_in_copy(repo_copy: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m <args>` in the copy, importing the copy's alignlab and experiments."""
    env = {**os.environ, "PYTHONPATH": f"{repo_copy / 'lib'}{os.pathsep}{repo_copy}"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=repo_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_scaffolded_experiment_is_planned_by_the_dag(repo_copy):
    before = {path for path in repo_copy.rglob("*") if path.is_file()}
    written = new_experiment("toy_decay", repo_copy)
    folder = repo_copy / "experiments" / "toy_decay"
    assert folder / "rules.smk" in written and folder / "tests" / "test_toy_decay.py" in written
    created = {path for path in repo_copy.rglob("*") if path.is_file()} - before
    assert created == set(written)
    assert all(path.is_relative_to(folder) for path in created)  # one folder, nothing else
    # ... and its place in the paper's reading order, at the end until its author moves it
    assert (
        yaml.safe_load((repo_copy / "paper/order.yaml").read_text())["sections"][-1] == "toy_decay"
    )
    for scale in ("smoke", "paper"):
        result = _run_in_copy(
            repo_copy, "snakemake", "-n", "--cores", "1", "--config", f"scale={scale}"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "toy_decay_run" in result.stdout and "experiment=grokking" in result.stdout


def test_scaffolded_experiment_runs_end_to_end(repo_copy):
    new_experiment("toy_decay", repo_copy)
    result = _run_in_copy(
        repo_copy, "snakemake", "--cores", "2", "--config", "scale=smoke", "only=toy_decay"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (repo_copy / "paper/figures/toy_decay/curve.png").exists()
    assert "toy_decay" in (repo_copy / "paper/generated/sections.tex").read_text()
    folder = repo_copy / "experiments" / "toy_decay"
    tests = _run_in_copy(repo_copy, "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests"))
    assert tests.returncode == 0, tests.stdout[-2000:]


@pytest.mark.parametrize(
    ("name", "error"),
    [("Bad-Name", ValueError), ("class", ValueError), ("grokking", FileExistsError)],
)
def test_bad_or_taken_names_are_refused(repo_copy, name, error):
    with pytest.raises(error, match=repr(name)):
        new_experiment(name, repo_copy)
