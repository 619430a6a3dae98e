# Local learning coefficient over training (devinterp 2.x): devinterp's grokking MLP (train ->
# LLC per checkpoint) and the grokking experiment's transformer (LLC at its checkpoints).
# The grokking experiment is included first (Snakefile: UPSTREAM): its runs, analysis settings
# and output folder are GROK_RUNS, GROK_ANALYSIS and GROK_OUT here.
from alignlab.config import load_experiment
from alignlab.modular import dataset_path
from experiments.llc.mlp import dataset_id as llc_dataset_id
from experiments.llc.mlp import expand_mlp_runs

LLC = load_experiment(ROOT / "experiments/llc", SCALE)
LLC_OUT = f"results/llc/{SCALE}"
LLC_FIGS = "paper/figures/llc"
LLC_FIGURES = ["llc_mlp", "llc_transformer"]
LLC_GROK_OUT = GROK_OUT


def _llc_sgld_meta(sgld):
    return {f"sgld_{key}": value for key, value in sgld.items() if key != "device"}


LLC_MLP_RUNS = expand_mlp_runs(LLC)
LLC_GROK_RUNS = GROK_RUNS
LLC_TF_RUNS = {
    rid: run
    for rid, run in LLC_GROK_RUNS.items()
    # "all": every seed and the control (not grokking's nulls of other markers)
    if (LLC["transformer"]["runs"] == "all" and GROK_ROLES[rid] in ("canonical", "control"))
    or (run["seed"] == GROK_ANALYSIS["canonical_seed"] and GROK_ROLES[rid] == "canonical")
}
# Every run the tables hold: model kind, its config and the SGLD settings used on it.
LLC_META = {
    **{
        rid: {"model": "mlp", **run, **_llc_sgld_meta(LLC["mlp_sgld"])}
        for rid, run in LLC_MLP_RUNS.items()
    },
    **{
        rid: {"model": "transformer", **run, **_llc_sgld_meta(LLC["transformer_sgld"])}
        for rid, run in LLC_TF_RUNS.items()
    },
}
LLC_RUN_IDS = sorted(LLC_META)
# canonical: every seed (the transformer's are grokking's); control: the frozen MLP (lr 0)
LLC_ROLES = {**expand_mlp_runs(LLC, roles=True), **{rid: GROK_ROLES[rid] for rid in LLC_TF_RUNS}}
LLC_KIND_DIR = {
    rid: ("mlp" if meta["model"] == "mlp" else "transformer") for rid, meta in LLC_META.items()
}

TARGETS["llc"] = expand(f"{LLC_FIGS}/{{fig}}.{{ext}}", fig=LLC_FIGURES, ext=["pdf", "png"]) + [
    f"{LLC_OUT}/markers.parquet",
    f"{LLC_OUT}/numbers.json",
]


rule llc_dataset:
    output:
        "data/llc/{dataset}.parquet",
    log:
        "results/llc/logs/dataset/{dataset}.log",
    resources:
        mem_mb=500,
    params:
        spec=lambda wc: next(
            {k: run[k] for k in ("p", "frac_train", "data_seed")}
            for run in LLC_MLP_RUNS.values()
            if llc_dataset_id(run) == wc.dataset
        ),
        code=code("experiments.llc.mlp"),
    script:
        "scripts/dataset.py"


rule llc_train_mlp:
    input:
        dataset=lambda wc: f"data/llc/{llc_dataset_id(LLC_MLP_RUNS[wc.run_id])}.parquet",
    output:
        # Checkpoints and the resume state live beside these but are not declared outputs:
        # Snakemake deletes a failed job's outputs, and training must resume from them.
        log=f"{LLC_OUT}/mlp/{{run_id}}/train_log.parquet",
        provenance=f"{LLC_OUT}/mlp/{{run_id}}/provenance.json",
    log:
        f"{LLC_OUT}/logs/train/{{run_id}}.log",
    benchmark:
        f"{LLC_OUT}/benchmarks/train/{{run_id}}.tsv"
    resources:
        runtime=lambda wc: 60 if SCALE == "paper" else 10,
        gpu=0,
    params:
        run=lambda wc: LLC_MLP_RUNS[wc.run_id],
        run_dir=lambda wc: f"{LLC_OUT}/mlp/{wc.run_id}",
        code=code("experiments.llc.mlp"),
    script:
        "scripts/train_mlp.py"


rule llc_mlp:
    input:
        log=f"{LLC_OUT}/mlp/{{run_id}}/train_log.parquet",
        dataset=lambda wc: f"data/llc/{llc_dataset_id(LLC_MLP_RUNS[wc.run_id])}.parquet",
    output:
        table=f"{LLC_OUT}/mlp/{{run_id}}/llc.parquet",
        trace=f"{LLC_OUT}/mlp/{{run_id}}/llc_trace.parquet",
    log:
        f"{LLC_OUT}/logs/llc_mlp/{{run_id}}.log",
    benchmark:
        f"{LLC_OUT}/benchmarks/llc_mlp/{{run_id}}.tsv"
    resources:
        mem_mb=3000,
        runtime=lambda wc: 240 if SCALE == "paper" else 10,
        gpu=lambda wc: 1 if SCALE == "paper" else 0,
    params:
        run_dir=lambda wc: f"{LLC_OUT}/mlp/{wc.run_id}",
        sgld=LLC["mlp_sgld"],
        every=None,  # every MLP checkpoint
        code=code("experiments.llc.estimate"),
    script:
        "scripts/llc.py"


rule llc_transformer:
    input:
        # modular_train's output; the checkpoints lie beside it
        log=f"{LLC_GROK_OUT}/runs/{{run_id}}/train_log.parquet",
        dataset=lambda wc: dataset_path(LLC_TF_RUNS[wc.run_id]),
        # its phase boundaries, where the LLC is estimated too
        grokking_markers=f"{LLC_GROK_OUT}/markers.parquet",
    output:
        table=f"{LLC_OUT}/transformer/{{run_id}}/llc.parquet",
        trace=f"{LLC_OUT}/transformer/{{run_id}}/llc_trace.parquet",
    log:
        f"{LLC_OUT}/logs/llc_transformer/{{run_id}}.log",
    benchmark:
        f"{LLC_OUT}/benchmarks/llc_transformer/{{run_id}}.tsv"
    resources:
        mem_mb=3000,
        runtime=lambda wc: 600 if SCALE == "paper" else 15,
        gpu=lambda wc: 1 if SCALE == "paper" else 0,
    params:
        run_dir=lambda wc: f"{LLC_GROK_OUT}/runs/{wc.run_id}",
        sgld=LLC["transformer_sgld"],
        every=LLC["transformer"]["every"],
        code=code("experiments.llc.estimate"),
    script:
        "scripts/llc_transformer.py"


rule llc_collect:
    input:
        tables=[f"{LLC_OUT}/{LLC_KIND_DIR[rid]}/{rid}/llc.parquet" for rid in LLC_RUN_IDS],
        traces=[f"{LLC_OUT}/{LLC_KIND_DIR[rid]}/{rid}/llc_trace.parquet" for rid in LLC_RUN_IDS],
    output:
        measures=f"{LLC_OUT}/measures.parquet",
        runs=f"{LLC_OUT}/runs.parquet",
        traces=f"{LLC_OUT}/traces.parquet",
    log:
        f"{LLC_OUT}/logs/collect.log",
    resources:
        mem_mb=2000,
    params:
        run_ids=LLC_RUN_IDS,
        runs=LLC_META,
        roles=LLC_ROLES,
        code=code("experiments.llc.summary"),
    script:
        "scripts/collect.py"


rule llc_markers:
    input:
        measures=f"{LLC_OUT}/measures.parquet",
        runs=f"{LLC_OUT}/runs.parquet",
        grokking_markers=f"{LLC_GROK_OUT}/markers.parquet",
    output:
        f"{LLC_OUT}/markers.parquet",
    log:
        f"{LLC_OUT}/logs/markers.log",
    params:
        code=code("experiments.llc.summary"),
    script:
        "scripts/markers.py"


rule llc_figures:
    input:
        measures=f"{LLC_OUT}/measures.parquet",
        runs=f"{LLC_OUT}/runs.parquet",
        markers=f"{LLC_OUT}/markers.parquet",
        phases=f"{LLC_GROK_OUT}/phases.parquet",
    output:
        [
            (
                report(f"{LLC_FIGS}/{fig}.png", category="llc", caption=f"report/{fig}.rst")
                if ext == "png"
                else f"{LLC_FIGS}/{fig}.{ext}"
            )
            for fig in LLC_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{LLC_OUT}/logs/figures.log",
    resources:
        mem_mb=2000,
    params:
        out_dir=LLC_FIGS,
        code=code("experiments.llc.figures"),
    script:
        "scripts/figures.py"


rule llc_numbers:
    input:
        markers=f"{LLC_OUT}/markers.parquet",
        runs=f"{LLC_OUT}/runs.parquet",
    output:
        f"{LLC_OUT}/numbers.json",
    log:
        f"{LLC_OUT}/logs/numbers.log",
    params:
        code=code("experiments.llc.summary"),
    script:
        "scripts/numbers.py"


# The explorer's views: the LLC and the losses over training, per run.
EXPLORE["llc"] = f"{LLC_OUT}/explorer.json"


rule llc_explore:
    input:
        table=f"{LLC_OUT}/measures.parquet",
        runs=f"{LLC_OUT}/runs.parquet",
    output:
        EXPLORE["llc"],
    log:
        f"{LLC_OUT}/logs/explore.log",
    params:
        code=code("experiments.llc.explore"),
    script:
        "scripts/explore.py"
