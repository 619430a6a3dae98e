# Grokking on modular addition (Nanda et al. 2023): dataset -> train -> measures -> figures.
from alignlab.config import expand_runs, load_experiment, run_roles
from alignlab.modular import dataset_path

GROK = load_experiment(ROOT / "experiments/grokking", SCALE)
GROK_RUNS = expand_runs(GROK)
GROK_ROLES = run_roles(GROK)  # canonical: every seed; control: no weight decay
# Priority: grokking's trainings are the DAG's longest jobs, and circuits and llc wait for them;
# started last (a laptop run measured), they left one core idle for the last ~5 minutes.
MODULAR["grokking"] = {
    "runs": GROK_RUNS,
    "runtime": 600 if SCALE == "paper" else 30,
    "priority": 10,
}
GROK_ANALYSIS = GROK["analysis"]
GROK_OUT = f"results/grokking/{SCALE}"
GROK_FIGS = "paper/figures/grokking"
GROK_FIGURES = ["losses", "gini_norm", "spectrum"]

TARGETS["grokking"] = expand(
    f"{GROK_FIGS}/{{fig}}.{{ext}}", fig=GROK_FIGURES, ext=["pdf", "png"]
) + [
    f"{GROK_OUT}/phases.parquet",
    f"{GROK_OUT}/numbers.json",
]


rule grokking_measures:
    input:
        log=f"{GROK_OUT}/runs/{{run_id}}/train_log.parquet",
        dataset=lambda wc: dataset_path(GROK_RUNS[wc.run_id]),
    output:
        table=f"{GROK_OUT}/runs/{{run_id}}/measures.parquet",
        key_freqs=f"{GROK_OUT}/runs/{{run_id}}/key_frequencies.json",
    log:
        f"{GROK_OUT}/logs/measures/{{run_id}}.log",
    benchmark:
        f"{GROK_OUT}/benchmarks/measures/{{run_id}}.tsv"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        run_dir=lambda wc: f"{GROK_OUT}/runs/{wc.run_id}",
        key_freq_threshold=GROK_ANALYSIS["key_freq_threshold"],
        code=code("alignlab.modular"),
    script:
        "scripts/measures.py"


rule grokking_collect:
    input:
        tables=expand(f"{GROK_OUT}/runs/{{run_id}}/measures.parquet", run_id=sorted(GROK_RUNS)),
    output:
        measures=f"{GROK_OUT}/measures.parquet",
        runs=f"{GROK_OUT}/runs.parquet",
    log:
        f"{GROK_OUT}/logs/collect.log",
    resources:
        mem_mb=2000,
    params:
        run_ids=sorted(GROK_RUNS),
        runs=GROK_RUNS,
        roles=GROK_ROLES,
        code=code("alignlab.modular"),
    script:
        "../../lib/alignlab/workflow/scripts/collect.py"


rule grokking_phases:
    input:
        measures=f"{GROK_OUT}/measures.parquet",
        runs=f"{GROK_OUT}/runs.parquet",
    output:
        phases=f"{GROK_OUT}/phases.parquet",
        markers=f"{GROK_OUT}/markers.parquet",
    log:
        f"{GROK_OUT}/logs/phases.log",
    resources:
        mem_mb=2000,
    params:
        code=code("experiments.grokking.phases"),
    script:
        "scripts/phases.py"


rule grokking_figures:
    input:
        measures=f"{GROK_OUT}/measures.parquet",
        runs=f"{GROK_OUT}/runs.parquet",
        phases=f"{GROK_OUT}/phases.parquet",
    output:
        # PNGs go into the HTML report (snakemake --report), one caption each, under "grokking".
        [
            (
                report(f"{GROK_FIGS}/{fig}.png", category="grokking", caption=f"report/{fig}.rst")
                if ext == "png"
                else f"{GROK_FIGS}/{fig}.{ext}"
            )
            for fig in GROK_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{GROK_OUT}/logs/figures.log",
    resources:
        mem_mb=2000,
    params:
        canonical_seed=GROK_ANALYSIS["canonical_seed"],
        out_dir=GROK_FIGS,
        code=code("experiments.grokking.figures"),
    script:
        "scripts/figures.py"


rule grokking_numbers:
    input:
        measures=f"{GROK_OUT}/measures.parquet",
        runs=f"{GROK_OUT}/runs.parquet",
        markers=f"{GROK_OUT}/markers.parquet",
    output:
        f"{GROK_OUT}/numbers.json",
    log:
        f"{GROK_OUT}/logs/numbers.log",
    params:
        canonical_seed=GROK_ANALYSIS["canonical_seed"],
        code=code("experiments.grokking.numbers"),
    script:
        "scripts/numbers.py"


# The explorer's views of every run (lib/alignlab/explorer; the page: paper/rules.smk).
EXPLORE["grokking"] = f"{GROK_OUT}/explorer.json"


rule grokking_explore:
    input:
        measures=f"{GROK_OUT}/measures.parquet",
        runs=f"{GROK_OUT}/runs.parquet",
        phases=f"{GROK_OUT}/phases.parquet",
    output:
        EXPLORE["grokking"],
    log:
        f"{GROK_OUT}/logs/explore.log",
    params:
        code=code("experiments.grokking.explore"),
    script:
        "scripts/explore.py"
