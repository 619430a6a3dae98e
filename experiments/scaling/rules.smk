# Scaling and phase diagrams (Power et al. 2022; Liu et al. 2022):
# dataset -> train (one job per run; on a GPU one job per group of same-shape runs) -> summary
# per run -> runs table -> markers, figures, numbers.
from alignlab.config import load_experiment
from alignlab.modular import dataset_path
from alignlab.runtime import resolve_device
from experiments.scaling.sweeps import expand_sweeps, vectorized_groups

SCAL = load_experiment(ROOT / "experiments/scaling", SCALE)
SCAL_RUNS = expand_sweeps(SCAL)
SCAL_ANALYSIS = SCAL["analysis"]
SCAL_OUT = f"results/scaling/{SCALE}"
SCAL_FIGS = "paper/figures/scaling"
SCAL_FIGURES = ["fraction", "phase_diagram", "width_decay"]
# On a machine with CUDA (and `device: auto`), runs of one shape and dataset train together as one
# vectorized model (alignlab.vectorized_train): one scaling_train_group_<i> job per group. On CPU every
# run is its own 1-thread job (modular_train), side by side with early stop.
# `--config vectorize=on` forces the grouped path (also on CPU), `vectorize=off` the per-run one.
SCAL_VECTORIZE = {
    "on": True,
    "off": False,
    "auto": SCAL["defaults"].get("device", "auto") == "auto"
    and resolve_device("auto").type == "cuda",
}[str(config.get("vectorize", "auto"))]
SCAL_GROUPS = vectorized_groups(SCAL_RUNS) if SCAL_VECTORIZE else {}
SCAL_GROUPED = {run_id for ids in SCAL_GROUPS.values() for run_id in ids}
MODULAR["scaling"] = {
    "runs": SCAL_RUNS,
    "runtime": 600 if SCALE == "paper" else 30,
    "grouped": SCAL_GROUPED,
}

TARGETS["scaling"] = expand(
    f"{SCAL_FIGS}/{{fig}}.{{ext}}", fig=SCAL_FIGURES, ext=["pdf", "png"]
) + [
    f"{SCAL_OUT}/runs.parquet",
    f"{SCAL_OUT}/numbers.json",
]


# One rule per group (its outputs are the group's run logs, which a wildcard cannot express).
for _i, (_gid, _ids) in enumerate(sorted(SCAL_GROUPS.items())):

    rule:
        name:
            f"scaling_train_group_{_i}"
        input:
            dataset=dataset_path(SCAL_RUNS[_ids[0]]),
        output:
            logs=[f"{SCAL_OUT}/runs/{rid}/train_log.parquet" for rid in _ids],
        log:
            f"{SCAL_OUT}/logs/train_group/{_gid}.log",
        benchmark:
            f"{SCAL_OUT}/benchmarks/train_group/{_gid}.tsv"
        resources:
            mem_mb=8000,
            runtime=600,
            gpu=1,
        params:
            runs=[SCAL_RUNS[rid] for rid in _ids],
            run_dirs=[f"{SCAL_OUT}/runs/{rid}" for rid in _ids],
            # the group trains here (stacked checkpoints, resume state), then splits per run
            group_dir=f"{SCAL_OUT}/groups/{_gid}",
            code=code("alignlab.vectorized_train"),
        script:
            "scripts/train_group.py"


# One job summarizes every run and collects them: a job per run would spend most of its time
# starting Python and importing torch (54 such jobs at the laptop scale).
rule scaling_collect:
    input:
        logs=expand(f"{SCAL_OUT}/runs/{{run_id}}/train_log.parquet", run_id=sorted(SCAL_RUNS)),
    output:
        summaries=expand(f"{SCAL_OUT}/runs/{{run_id}}/summary.parquet", run_id=sorted(SCAL_RUNS)),
        runs=f"{SCAL_OUT}/runs.parquet",
        curves=f"{SCAL_OUT}/curves.parquet",
    log:
        f"{SCAL_OUT}/logs/collect.log",
    resources:
        mem_mb=2000,
    params:
        run_ids=sorted(SCAL_RUNS),
        runs=SCAL_RUNS,
        run_dirs=[f"{SCAL_OUT}/runs/{rid}" for rid in sorted(SCAL_RUNS)],
        analysis=SCAL_ANALYSIS,
        code=code("experiments.scaling.sweeps"),
    script:
        "scripts/collect.py"


rule scaling_markers:
    input:
        runs=f"{SCAL_OUT}/runs.parquet",
    output:
        f"{SCAL_OUT}/markers.parquet",
    log:
        f"{SCAL_OUT}/logs/markers.log",
    params:
        code=code("experiments.scaling.sweeps"),
    script:
        "scripts/markers.py"


rule scaling_figures:
    input:
        runs=f"{SCAL_OUT}/runs.parquet",
        curves=f"{SCAL_OUT}/curves.parquet",
    output:
        # PNGs go into the HTML report (snakemake --report), one caption each, under "scaling".
        [
            (
                report(f"{SCAL_FIGS}/{fig}.png", category="scaling", caption=f"report/{fig}.rst")
                if ext == "png"
                else f"{SCAL_FIGS}/{fig}.{ext}"
            )
            for fig in SCAL_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{SCAL_OUT}/logs/figures.log",
    resources:
        mem_mb=2000,
    params:
        out_dir=SCAL_FIGS,
        analysis=SCAL_ANALYSIS,
        code=code("experiments.scaling.figures"),
    script:
        "scripts/figures.py"


rule scaling_numbers:
    input:
        runs=f"{SCAL_OUT}/runs.parquet",
    output:
        f"{SCAL_OUT}/numbers.json",
    log:
        f"{SCAL_OUT}/logs/numbers.log",
    params:
        code=code("experiments.scaling.sweeps"),
    script:
        "scripts/numbers.py"


# The explorer's views: each run's losses and accuracies, per run.
EXPLORE["scaling"] = f"{SCAL_OUT}/explorer.json"


rule scaling_explore:
    input:
        table=f"{SCAL_OUT}/curves.parquet",
        runs=f"{SCAL_OUT}/runs.parquet",
    output:
        EXPLORE["scaling"],
    log:
        f"{SCAL_OUT}/logs/explore.log",
    params:
        code=code("experiments.scaling.explore"),
    script:
        "scripts/explore.py"
