"""The Snakemake DAG end to end, at the smoke scale, in a temporary working directory."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from alignlab.markers import STATUSES

pytestmark = pytest.mark.workflow  # runs Snakemake: `pytest -m "not workflow"` skips it

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def _snakemake(workdir: Path, *args: str, snakefile: Path | None = None):
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", *args]
    if snakefile:
        cmd[cmd.index(str(REPO / "Snakefile"))] = str(snakefile)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def smoke_dag(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    result = _snakemake(workdir, "--config", "scale=smoke")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_smoke_dag_builds_every_figure(smoke_dag):
    figures = smoke_dag / "paper" / "figures" / "grokking"
    for name in ("losses", "gini_norm", "spectrum"):
        for ext in ("pdf", "png"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000


def test_smoke_dag_builds_the_paper_inputs(smoke_dag):
    numbers = (smoke_dag / "paper" / "generated" / "numbers.tex").read_text()
    assert "\\newcommand{\\grokkingP}{23}" in numbers  # the smoke config's p
    markers = pd.read_parquet(smoke_dag / "results" / "paper" / "smoke" / "markers.parquet")
    grokking = markers[markers.experiment == "grokking"]
    assert len(grokking) >= 8
    assert set(grokking.status) == {"not run at this scale"}  # no grokking marker runs at smoke
    assert set(markers.status) <= set(STATUSES)
    # the controls run at smoke (the oracle, uniform attention) and hold; findings are not run
    controls = markers[markers.control & (markers.status != "not run at this scale")]
    assert len(controls) >= 2 and set(controls.status) == {"holds"}
    findings_tex = (smoke_dag / "paper" / "generated" / "markers_table.tex").read_text()
    assert "\\citealp{nanda2023progress}" in findings_tex  # natbib: "Nanda et al., 2023"
    assert "uniform-attention" not in findings_tex  # controls have their own table
    sections = (smoke_dag / "paper" / "generated" / "sections.tex").read_text()
    assert "\\input{../experiments/grokking/paper.tex}" in sections
    assert str(REPO) not in sections and str(smoke_dag) not in sections  # no machine's paths
    if shutil.which("latexmk"):
        assert (smoke_dag / "paper" / "main.pdf").stat().st_size > 10_000


def test_report_is_built(smoke_dag):
    result = _snakemake(smoke_dag, "--config", "scale=smoke", "--report", "report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (smoke_dag / "report.html").stat().st_size > 100_000


def test_smoke_dag_tables_are_tidy_and_joinable(smoke_dag):
    out = smoke_dag / "results" / "grokking" / "smoke"
    measures = pd.read_parquet(out / "measures.parquet")
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(measures.columns) == ["step", "measure", "component", "value", "run_id"]
    assert not measures.duplicated(["run_id", "step", "measure", "component"]).any()
    assert set(measures.run_id) == set(runs.run_id)
    assert {"restricted_loss", "excluded_loss", "gini_W_E", "gini_W_L"} <= set(measures.measure)
    assert (runs.weight_decay == 0).sum() == 1  # the control


def test_dag_is_up_to_date_after_a_run(smoke_dag):
    result = _snakemake(smoke_dag, "--config", "scale=smoke", "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_laptop_and_paper_scales_plan(tmp_path):
    for scale in ("laptop", "paper"):
        result = _snakemake(tmp_path, "--config", f"scale={scale}", "-n")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "experiment=grokking, run_id=" in result.stdout  # modular_train's jobs


def test_paper_pdf_is_planned_only_with_tex(tmp_path):
    with_tex = shutil.which("latexmk") is not None
    planned = _snakemake(tmp_path, "--config", "scale=smoke", "-n").stdout
    assert ("rule paper_pdf:" in planned) == with_tex
    without = _snakemake(tmp_path, "--config", "scale=smoke", "pdf=off", "-n").stdout
    assert "rule paper_pdf:" not in without and "rule paper_markers:" in without


def test_slurm_profile_plans_the_paper_grid(tmp_path):
    result = _snakemake(
        tmp_path,
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        "--config",
        "scale=paper",
        "-n",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = result.stdout.count("experiment=grokking, run_id=")  # modular_train's jobs
    assert runs == 11  # 5 seeds, the control and the 5 nulls of restricted-before-test


def test_bad_config_stops_snakemake_before_any_work(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "experiments", repo / "experiments")
    shutil.copy(REPO / "Snakefile", repo / "Snakefile")
    shutil.copytree(REPO / "lib" / "alignlab" / "workflow", repo / "lib" / "alignlab" / "workflow")
    config_path = repo / "experiments" / "grokking" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["smoke"]["defaults"]["weight_decay"] = -1
    config_path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = _snakemake(workdir, "--config", "scale=smoke", snakefile=repo / "Snakefile")
    assert result.returncode != 0
    assert "key smoke.defaults.weight_decay: value -1" in result.stderr + result.stdout
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


def test_the_explorer_page_works_offline_in_headless_chromium(smoke_dag):
    """The smoke page opens from the file system with the network off and fetches nothing;
    at each checkpoint every view with frames shows that checkpoint's frame and every cursor sits
    at its step, after switching runs too; every experiment draws its views; the console shows
    no error."""
    from selenium.webdriver.support.ui import Select

    from tests.browser import headless_chromium

    page = smoke_dag / "paper" / "explorer" / "index.html"
    assert page.stat().st_size < 20e6
    driver = headless_chromium()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
        driver.get(page.as_uri())
        assert driver.execute_script("return typeof Plotly") == "object"  # embedded
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        assert len(driver.find_elements("css selector", "table.markers tr")) > 1
        chooser = Select(driver.find_element("id", "experiment"))
        shown = [option.get_attribute("value") for option in chooser.options]
        assert sorted(shown) == sorted(p.parent.name for p in REPO.glob("experiments/*/explore.py"))
        for experiment in shown:  # every experiment draws its views
            chooser.select_by_value(experiment)
            assert driver.find_elements("css selector", ".panel .main-svg"), experiment
        for experiment in ("grokking", "circuits", "backdoor"):
            chooser.select_by_value(experiment)
            runs = Select(driver.find_element("id", "run"))
            for run in {0, len(runs.options) - 1}:
                runs.select_by_index(run)
                for k in (0, 1):
                    assert driver.execute_script(_SHOWS_CHECKPOINT, k) == [], (experiment, run, k)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


# Move the slider to checkpoint k; return what disagrees with the stored view (empty if none).
_SHOWS_CHECKPOINT = """
const k = arguments[0], slider = document.getElementById('slider');
slider.value = k; slider.dispatchEvent(new Event('input'));
const wrong = [];
if (document.getElementById('step').textContent !== 'step ' + current.steps[k]) wrong.push('label');
let framed = 0;
for (const p of current.panels) {
  const div = document.getElementById('panel-' + p.id);
  if (p.frames) {
    framed += 1;
    const f = p.frames[k];
    for (const [attr, values] of Object.entries(f.update))
      f.traces.forEach((t, j) => {
        const same = JSON.stringify(div.data[t][attr]) === JSON.stringify(values[j]);
        if (!same) wrong.push(p.id + '.' + attr);
      });
  }
  if (p.cursor) {
    const shapes = div.layout.shapes;
    if (shapes[shapes.length - 1].x0 !== current.steps[k]) wrong.push(p.id + '.cursor');
  }
}
if (framed === 0) wrong.push('no panel with frames');
return wrong;
"""
