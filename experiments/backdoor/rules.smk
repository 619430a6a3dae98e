# backdoor: a planted backdoor audited from inside. Per run: train (checkpoints) -> audit every
# checkpoint with every detector; calibration of the detectors on cupbearer's test (digits);
# then collect, markers and numbers -> the figures.
from alignlab.config import expand_runs, load_experiment, run_roles
from experiments.backdoor.task import TaskConfig

BD = load_experiment(ROOT / "experiments/backdoor", SCALE)
BD_RUNS = expand_runs(BD)
for _run in BD_RUNS.values():
    TaskConfig.of(_run)  # the relations between keys the schema cannot state, before any job
BD_ROLES = run_roles(BD)  # canonical: backdoored; control: its twin; sweep: the size sweep
BD_IDS = sorted(BD_RUNS)
BD_OUT = f"results/backdoor/{SCALE}"
BD_FIGS = "paper/figures/backdoor"
BD_FIGURES = ["chronology", "size", "scores"]

TARGETS["backdoor"] = expand(f"{BD_FIGS}/{{fig}}.{{ext}}", fig=BD_FIGURES, ext=["pdf", "png"]) + [
    f"{BD_OUT}/markers.parquet",
    f"{BD_OUT}/numbers.json",
]


rule backdoor_train:
    output:
        # checkpoints live beside these, not declared (see modular_train)
        log=f"{BD_OUT}/runs/{{run_id}}/train_log.parquet",
        provenance=f"{BD_OUT}/runs/{{run_id}}/provenance.json",
    log:
        f"{BD_OUT}/logs/train/{{run_id}}.log",
    benchmark:
        f"{BD_OUT}/benchmarks/train/{{run_id}}.tsv"
    resources:
        mem_mb=1000,
        runtime=lambda wc: 30 if SCALE == "paper" else 5,
    params:
        run=lambda wc: BD_RUNS[wc.run_id],
        run_dir=lambda wc: f"{BD_OUT}/runs/{wc.run_id}",
        code=code("experiments.backdoor.train"),
    script:
        "scripts/train.py"


rule backdoor_audit:
    input:
        log=f"{BD_OUT}/runs/{{run_id}}/train_log.parquet",
    output:
        measures=f"{BD_OUT}/runs/{{run_id}}/measures.parquet",
        scores=f"{BD_OUT}/runs/{{run_id}}/scores.parquet",
        hist=f"{BD_OUT}/runs/{{run_id}}/score_hist.parquet",
    log:
        f"{BD_OUT}/logs/audit/{{run_id}}.log",
    benchmark:
        f"{BD_OUT}/benchmarks/audit/{{run_id}}.tsv"
    resources:
        mem_mb=1000,
        runtime=lambda wc: 30 if SCALE == "paper" else 5,
    params:
        run=lambda wc: BD_RUNS[wc.run_id],
        analysis=BD["analysis"],
        run_dir=lambda wc: f"{BD_OUT}/runs/{wc.run_id}",
        code=code("experiments.backdoor.measure"),
    script:
        "scripts/audit.py"


rule backdoor_calibration:
    output:
        f"{BD_OUT}/calibration.parquet",
    log:
        f"{BD_OUT}/logs/calibration.log",
    benchmark:
        f"{BD_OUT}/benchmarks/calibration.tsv"
    resources:
        mem_mb=1000,
    params:
        calibration=BD["calibration"],
        code=code("experiments.backdoor.calibration"),
    script:
        "scripts/calibration.py"


rule backdoor_summarize:
    input:
        tables=expand(f"{BD_OUT}/runs/{{run_id}}/measures.parquet", run_id=BD_IDS),
        scores=expand(f"{BD_OUT}/runs/{{run_id}}/scores.parquet", run_id=BD_IDS),
        calibration=f"{BD_OUT}/calibration.parquet",
    output:
        measures=f"{BD_OUT}/measures.parquet",
        scores=f"{BD_OUT}/scores.parquet",
        runs=f"{BD_OUT}/runs.parquet",
        markers=f"{BD_OUT}/markers.parquet",
        numbers=f"{BD_OUT}/numbers.json",
    log:
        f"{BD_OUT}/logs/summarize.log",
    params:
        run_ids=BD_IDS,
        runs=BD_RUNS,
        roles=BD_ROLES,
        analysis=BD["analysis"],
        calibration=BD["calibration"],
        code=code("experiments.backdoor.summary"),
    script:
        "scripts/summarize.py"


rule backdoor_figures:
    input:
        measures=f"{BD_OUT}/measures.parquet",
        scores=f"{BD_OUT}/scores.parquet",
        runs=f"{BD_OUT}/runs.parquet",
    output:
        [
            (
                report(f"{BD_FIGS}/{fig}.png", category="backdoor", caption=f"report/{fig}.rst")
                if ext == "png"
                else f"{BD_FIGS}/{fig}.{ext}"
            )
            for fig in BD_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{BD_OUT}/logs/figures.log",
    params:
        out_dir=BD_FIGS,
        code=code("experiments.backdoor.figures"),
    script:
        "scripts/figures.py"


# The explorer's views: each detector's AUROC over training and its score histograms at the
# checkpoint, per run.
EXPLORE["backdoor"] = f"{BD_OUT}/explorer.json"


rule backdoor_explore:
    input:
        measures=f"{BD_OUT}/measures.parquet",
        hist=expand(f"{BD_OUT}/runs/{{run_id}}/score_hist.parquet", run_id=BD_IDS),
        runs=f"{BD_OUT}/runs.parquet",
    output:
        EXPLORE["backdoor"],
    log:
        f"{BD_OUT}/logs/explore.log",
    params:
        run_ids=BD_IDS,
        code=code("experiments.backdoor.explore"),
    script:
        "scripts/explore.py"
