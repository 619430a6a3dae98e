# Circuit discovery against ground truth (Conmy et al. 2023), then over grokking's training:
# per task, compile the program and score every method x ablation on it and on random-weight
# nulls -> per grokking seed, node-level discovery at its checkpoints -> markers, numbers ->
# figures. Reads experiments/grokking (GROK_*) and experiments/circuits (CIRC_*), included first
# (Snakefile: UPSTREAM).
from alignlab.config import load_experiment
from experiments.circuit_discovery.summary import zoo_runs

CD = load_experiment(ROOT / "experiments/circuit_discovery", SCALE)
CD_TASKS = CD["zoo"]["tasks"]
CD_RUNS = zoo_runs(CD)  # the markers' runs: task x (compiled, random) x seed
CD_OUT = f"results/circuit_discovery/{SCALE}"
READS["circuit_discovery"] = ["grokking", "circuits"]
CD_FIGS = "paper/figures/circuit_discovery"
CD_FIGURES = ["roc", "auc_heatmap", "over_training"]
CD_TABLES = ["auc", "roc", "checks"]
# Every seed's canonical grokking run (weight decay > 0): its checkpoints over training.
CD_GROK_IDS = sorted(rid for rid in GROK_RUNS if GROK_ROLES[rid] == "canonical")

TARGETS["circuit_discovery"] = expand(
    f"{CD_FIGS}/{{fig}}.{{ext}}", fig=CD_FIGURES, ext=["pdf", "png"]
) + [
    f"{CD_OUT}/numbers.json",
]


rule circuit_discovery_zoo:
    output:
        **{name: f"{CD_OUT}/zoo/{{task}}/{name}.parquet" for name in CD_TABLES},
    log:
        f"{CD_OUT}/logs/zoo/{{task}}.log",
    benchmark:
        f"{CD_OUT}/benchmarks/zoo/{{task}}.tsv"
    wildcard_constraints:
        task="|".join(CD_TASKS),
    resources:
        mem_mb=1000,
        runtime=lambda wc: 20 if SCALE == "paper" else 5,
    params:
        zoo=CD["zoo"],
        code=code("experiments.circuit_discovery.evaluate"),
    script:
        "scripts/zoo.py"


rule circuit_discovery_training:
    input:
        train_log=f"{GROK_OUT}/runs/{{run_id}}/train_log.parquet",
        key_freqs=f"{GROK_OUT}/runs/{{run_id}}/key_frequencies.json",
        fourier=f"{CIRC_OUT}/measures.parquet",
    output:
        f"{CD_OUT}/training/{{run_id}}.parquet",
    log:
        f"{CD_OUT}/logs/training/{{run_id}}.log",
    benchmark:
        f"{CD_OUT}/benchmarks/training/{{run_id}}.tsv"
    wildcard_constraints:
        run_id="|".join(CD_GROK_IDS),
    resources:
        mem_mb=2000,
        runtime=lambda wc: 30 if SCALE == "paper" else 5,
    params:
        run_dir=lambda wc: f"{GROK_OUT}/runs/{wc.run_id}",
        analysis=CD["training"],
        threshold=CIRC["explained_threshold"],
        code=code("experiments.circuit_discovery.training"),
    script:
        "scripts/training.py"


rule circuit_discovery_summary:
    input:
        **{
            name: expand(f"{CD_OUT}/zoo/{{task}}/{name}.parquet", task=CD_TASKS)
            for name in CD_TABLES
        },
        training=expand(f"{CD_OUT}/training/{{run_id}}.parquet", run_id=CD_GROK_IDS),
        grokking_markers=f"{GROK_OUT}/markers.parquet",
    output:
        markers=f"{CD_OUT}/markers.parquet",
        runs=f"{CD_OUT}/runs.parquet",
        auc=f"{CD_OUT}/auc.parquet",
        roc=f"{CD_OUT}/roc.parquet",
        training=f"{CD_OUT}/training.parquet",
        numbers=f"{CD_OUT}/numbers.json",
    log:
        f"{CD_OUT}/logs/summary.log",
    params:
        runs=CD_RUNS,
        training_seeds={rid: GROK_RUNS[rid]["seed"] for rid in CD_GROK_IDS},
        analysis=CD["training"],
        code=code("experiments.circuit_discovery.summary"),
    script:
        "scripts/summary.py"


rule circuit_discovery_figures:
    input:
        auc=f"{CD_OUT}/auc.parquet",
        roc=f"{CD_OUT}/roc.parquet",
        training=f"{CD_OUT}/training.parquet",
        phases=f"{GROK_OUT}/phases.parquet",
    output:
        # PNGs go into the HTML report (snakemake --report), one caption each.
        [
            (
                report(
                    f"{CD_FIGS}/{fig}.png",
                    category="circuit_discovery",
                    caption=f"report/{fig}.rst",
                )
                if ext == "png"
                else f"{CD_FIGS}/{fig}.{ext}"
            )
            for fig in CD_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{CD_OUT}/logs/figures.log",
    resources:
        mem_mb=1000,
    params:
        out_dir=CD_FIGS,
        code=code("experiments.circuit_discovery.figures"),
    script:
        "scripts/figures.py"


# The explorer's views: the zoo's AUCs, and discovery over each grokking seed's training.
EXPLORE["circuit_discovery"] = f"{CD_OUT}/explorer.json"


rule circuit_discovery_explore:
    input:
        auc=f"{CD_OUT}/auc.parquet",
        training=f"{CD_OUT}/training.parquet",
        phases=f"{GROK_OUT}/phases.parquet",
    output:
        EXPLORE["circuit_discovery"],
    log:
        f"{CD_OUT}/logs/explore.log",
    params:
        seeds={rid: GROK_RUNS[rid]["seed"] for rid in CD_GROK_IDS},
        code=code("experiments.circuit_discovery.explore"),
    script:
        "scripts/explore.py"
