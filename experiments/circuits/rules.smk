# Circuits of the grokked transformer (Nanda et al. 2023): measures -> ablations -> markers,
# numbers -> figures, on the checkpoints of experiments/grokking at the same scale.
# The grokking experiment is included first (Snakefile: UPSTREAM): its runs and output folder are
# GROK_RUNS and GROK_OUT here.
from alignlab.config import expand_runs, load_experiment
from alignlab.modular import dataset_path
from experiments.circuits.measure import canonical_run_id

(CIRC,) = expand_runs(load_experiment(ROOT / "experiments/circuits", SCALE)).values()
CIRC_GROK_RUNS = GROK_RUNS
CIRC_SOURCE_ID = canonical_run_id(CIRC_GROK_RUNS, GROK_ROLES, CIRC["canonical_seed"])
CIRC_SOURCE = f"{GROK_OUT}/runs/{CIRC_SOURCE_ID}"
CIRC_INPUTS = {
    # train_log.parquet marks training complete; the checkpoints directory is beside it.
    "train_log": f"{CIRC_SOURCE}/train_log.parquet",
    "key_freqs": f"{CIRC_SOURCE}/key_frequencies.json",
    "dataset": dataset_path(CIRC_GROK_RUNS[CIRC_SOURCE_ID]),
}
# The other seeds' canonical runs: their final checkpoints, so the trained-model markers
# rest on every seed.
CIRC_OTHER_IDS = [
    rid
    for rid, run in sorted(CIRC_GROK_RUNS.items())
    if GROK_ROLES[rid] == "canonical" and rid != CIRC_SOURCE_ID
]
CIRC_OTHER = {
    "run_dirs": [f"{GROK_OUT}/runs/{rid}" for rid in CIRC_OTHER_IDS],
    "key_freqs": [f"{GROK_OUT}/runs/{rid}/key_frequencies.json" for rid in CIRC_OTHER_IDS],
    "seeds": [CIRC_GROK_RUNS[rid]["seed"] for rid in CIRC_OTHER_IDS],
}
CIRC_OUT = f"results/circuits/{SCALE}"
READS["circuits"] = ["grokking"]
CIRC_FIGS = "paper/figures/circuits"
CIRC_FIGURES = ["neurons", "heads", "logits", "ablations", "controls"]

TARGETS["circuits"] = expand(
    f"{CIRC_FIGS}/{{fig}}.{{ext}}", fig=CIRC_FIGURES, ext=["pdf", "png"]
) + [
    f"{CIRC_OUT}/numbers.json",
]


rule circuits_measures:
    input:
        **CIRC_INPUTS,
        other_logs=[f"{d}/train_log.parquet" for d in CIRC_OTHER["run_dirs"]],
        other_key_freqs=CIRC_OTHER["key_freqs"],
    output:
        measures=f"{CIRC_OUT}/measures.parquet",
        spectrum=f"{CIRC_OUT}/logit_spectrum.parquet",
        runs=f"{CIRC_OUT}/runs.parquet",
    log:
        f"{CIRC_OUT}/logs/measures.log",
    benchmark:
        f"{CIRC_OUT}/benchmarks/measures.tsv"
    resources:
        mem_mb=4000,
        runtime=lambda wc: 120 if SCALE == "paper" else 10,
    params:
        source_run_dir=CIRC_SOURCE,
        other_seeds=CIRC_OTHER,
        analysis=CIRC,
        code=code("experiments.circuits.measure"),
    script:
        "scripts/measures.py"


rule circuits_ablations:
    input:
        **CIRC_INPUTS,
    output:
        f"{CIRC_OUT}/ablations.parquet",
    log:
        f"{CIRC_OUT}/logs/ablations.log",
    benchmark:
        f"{CIRC_OUT}/benchmarks/ablations.tsv"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        source_run_dir=CIRC_SOURCE,
        analysis=CIRC,
        code=code("experiments.circuits.ablate"),
    script:
        "scripts/ablations.py"


rule circuits_summary:
    input:
        measures=f"{CIRC_OUT}/measures.parquet",
        ablations=f"{CIRC_OUT}/ablations.parquet",
        runs=f"{CIRC_OUT}/runs.parquet",
    output:
        markers=f"{CIRC_OUT}/markers.parquet",
        numbers=f"{CIRC_OUT}/numbers.json",
    log:
        f"{CIRC_OUT}/logs/summary.log",
    params:
        threshold=CIRC["explained_threshold"],
        code=code("experiments.circuits.summary"),
    script:
        "scripts/summary.py"


rule circuits_figures:
    input:
        measures=f"{CIRC_OUT}/measures.parquet",
        spectrum=f"{CIRC_OUT}/logit_spectrum.parquet",
        ablations=f"{CIRC_OUT}/ablations.parquet",
        runs=f"{CIRC_OUT}/runs.parquet",
        phases=f"results/grokking/{SCALE}/phases.parquet",
    output:
        # PNGs go into the HTML report (snakemake --report), one caption each, under "circuits".
        [
            (
                report(f"{CIRC_FIGS}/{fig}.png", category="circuits", caption=f"report/{fig}.rst")
                if ext == "png"
                else f"{CIRC_FIGS}/{fig}.{ext}"
            )
            for fig in CIRC_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{CIRC_OUT}/logs/figures.log",
    resources:
        mem_mb=2000,
    params:
        threshold=CIRC["explained_threshold"],
        out_dir=CIRC_FIGS,
        code=code("experiments.circuits.figures"),
    script:
        "scripts/figures.py"


# The explorer's view of the canonical run as the circuit forms (neurons, heads, per checkpoint).
EXPLORE["circuits"] = f"{CIRC_OUT}/explorer.json"


rule circuits_explore:
    input:
        train_log=CIRC_INPUTS["train_log"],
        measures=f"{GROK_OUT}/measures.parquet",
        phases=f"{GROK_OUT}/phases.parquet",
    output:
        EXPLORE["circuits"],
    log:
        f"{CIRC_OUT}/logs/explore.log",
    benchmark:
        f"{CIRC_OUT}/benchmarks/explore.tsv"
    resources:
        mem_mb=4000,
        runtime=lambda wc: 60 if SCALE == "paper" else 5,
    params:
        run_dir=CIRC_SOURCE,
        run_id=CIRC_SOURCE_ID,
        chunk=CIRC["chunk"],
        code=code("experiments.circuits.explore"),
    script:
        "scripts/explore.py"
