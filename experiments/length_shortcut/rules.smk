# The length shortcut in reward models (Singhal et al. 2023): per run, train an RM on length-biased
# pairs (or the control's unbiased ones) with log-spaced checkpoints -> measure every checkpoint
# in the TransformerLens bridge -> collect, onsets, markers, numbers -> the figure.
from alignlab.config import expand_runs, load_experiment

LS = load_experiment(ROOT / "experiments/length_shortcut", SCALE)
LS_RUNS = expand_runs(LS)
LS_IDS = sorted(LS_RUNS)
LS_OUT = f"results/length_shortcut/{SCALE}"
LS_FIGS = "paper/figures/length_shortcut"
LS_FIGURES = ["signals", "layers"]

TARGETS["length_shortcut"] = expand(
    f"{LS_FIGS}/{{fig}}.{{ext}}", fig=LS_FIGURES, ext=["pdf", "png"]
) + [
    f"{LS_OUT}/numbers.json",
]


rule length_shortcut_train:
    output:
        # checkpoints live beside these, not declared (see modular_train)
        log=f"{LS_OUT}/runs/{{run_id}}/train_log.parquet",
        provenance=f"{LS_OUT}/runs/{{run_id}}/provenance.json",
    log:
        f"{LS_OUT}/logs/train/{{run_id}}.log",
    benchmark:
        f"{LS_OUT}/benchmarks/train/{{run_id}}.tsv"
    resources:
        mem_mb=2000,
        runtime=lambda wc: 60 if SCALE == "paper" else 5,
        gpu=lambda wc: 1 if SCALE == "paper" else 0,
    params:
        run=lambda wc: LS_RUNS[wc.run_id],
        env=LS["env"],
        run_dir=lambda wc: f"{LS_OUT}/runs/{wc.run_id}",
        code=code("experiments.length_shortcut.experiment"),
    script:
        "scripts/train.py"


rule length_shortcut_measures:
    input:
        log=f"{LS_OUT}/runs/{{run_id}}/train_log.parquet",
    output:
        f"{LS_OUT}/runs/{{run_id}}/measures.parquet",
    log:
        f"{LS_OUT}/logs/measures/{{run_id}}.log",
    benchmark:
        f"{LS_OUT}/benchmarks/measures/{{run_id}}.tsv"
    resources:
        mem_mb=2000,
        runtime=lambda wc: 30 if SCALE == "paper" else 5,
    params:
        run=lambda wc: LS_RUNS[wc.run_id],
        env=LS["env"],
        analysis=LS["analysis"],
        run_dir=lambda wc: f"{LS_OUT}/runs/{wc.run_id}",
        code=code("experiments.length_shortcut.experiment"),
    script:
        "scripts/measures.py"


rule length_shortcut_summarize:
    input:
        tables=expand(f"{LS_OUT}/runs/{{run_id}}/measures.parquet", run_id=LS_IDS),
    output:
        measures=f"{LS_OUT}/measures.parquet",
        runs=f"{LS_OUT}/runs.parquet",
        markers=f"{LS_OUT}/markers.parquet",
        numbers=f"{LS_OUT}/numbers.json",
    log:
        f"{LS_OUT}/logs/summarize.log",
    benchmark:
        f"{LS_OUT}/benchmarks/summarize.tsv"
    params:
        run_ids=LS_IDS,
        runs=LS_RUNS,
        analysis=LS["analysis"],
        env=LS["env"],
        code=code("experiments.length_shortcut.experiment"),
    script:
        "scripts/summarize.py"


rule length_shortcut_figures:
    input:
        measures=f"{LS_OUT}/measures.parquet",
        runs=f"{LS_OUT}/runs.parquet",
        markers=f"{LS_OUT}/markers.parquet",
    output:
        # PNGs go into the HTML report (snakemake --report), one caption each.
        [
            (
                report(
                    f"{LS_FIGS}/{fig}.png", category="length_shortcut", caption=f"report/{fig}.rst"
                )
                if ext == "png"
                else f"{LS_FIGS}/{fig}.{ext}"
            )
            for fig in LS_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{LS_OUT}/logs/figures.log",
    benchmark:
        f"{LS_OUT}/benchmarks/figures.tsv"
    params:
        out_dir=LS_FIGS,
        code=code("experiments.length_shortcut.figures"),
    script:
        "scripts/figures.py"


# The explorer's views: behaviour and the internal signals over training, per run.
EXPLORE["length_shortcut"] = f"{LS_OUT}/explorer.json"


rule length_shortcut_explore:
    input:
        table=f"{LS_OUT}/measures.parquet",
        runs=f"{LS_OUT}/runs.parquet",
    output:
        EXPLORE["length_shortcut"],
    log:
        f"{LS_OUT}/logs/explore.log",
    params:
        code=code("experiments.length_shortcut.explore"),
    script:
        "scripts/explore.py"
