# Clock vs pizza (Zhong et al. 2023): dataset -> train per attention rate -> measures -> figure.
from alignlab.config import expand_runs, load_experiment, run_roles

CP = load_experiment(ROOT / "experiments/clock_pizza", SCALE)
CP_RUNS = expand_runs(CP)
CP_ROLES = run_roles(CP)  # every run a point of the attention-rate sweep
MODULAR["clock_pizza"] = {"runs": CP_RUNS, "runtime": 120 if SCALE == "paper" else 10}
CP_ANALYSIS = CP["analysis"]
CP_OUT = f"results/clock_pizza/{SCALE}"
CP_FIGS = "paper/figures/clock_pizza"
CP_FIGURES = ["symmetricity"]

TARGETS["clock_pizza"] = expand(
    f"{CP_FIGS}/{{fig}}.{{ext}}", fig=CP_FIGURES, ext=["pdf", "png"]
) + [
    f"{CP_OUT}/markers.parquet",
    f"{CP_OUT}/numbers.json",
]


rule clock_pizza_measures:
    input:
        log=f"{CP_OUT}/runs/{{run_id}}/train_log.parquet",
    output:
        f"{CP_OUT}/runs/{{run_id}}/measures.parquet",
    log:
        f"{CP_OUT}/logs/measures/{{run_id}}.log",
    benchmark:
        f"{CP_OUT}/benchmarks/measures/{{run_id}}.tsv"
    resources:
        mem_mb=2000,
    params:
        run_dir=lambda wc: f"{CP_OUT}/runs/{wc.run_id}",
        n_samples=CP_ANALYSIS["n_samples"],
        sample_seed=CP_ANALYSIS["sample_seed"],
        every=CP_ANALYSIS["measure_every"],
        code=code("experiments.clock_pizza.measures"),
    script:
        "scripts/measures.py"


rule clock_pizza_collect:
    input:
        tables=expand(f"{CP_OUT}/runs/{{run_id}}/measures.parquet", run_id=sorted(CP_RUNS)),
    output:
        measures=f"{CP_OUT}/measures.parquet",
        runs=f"{CP_OUT}/runs.parquet",
    log:
        f"{CP_OUT}/logs/collect.log",
    params:
        run_ids=sorted(CP_RUNS),
        runs=CP_RUNS,
        roles=CP_ROLES,
        code=code("alignlab.modular"),
    script:
        "../../lib/alignlab/workflow/scripts/collect.py"


rule clock_pizza_markers:
    input:
        measures=f"{CP_OUT}/measures.parquet",
        runs=f"{CP_OUT}/runs.parquet",
    output:
        f"{CP_OUT}/markers.parquet",
    log:
        f"{CP_OUT}/logs/markers.log",
    params:
        code=code("experiments.clock_pizza.measures"),
    script:
        "scripts/markers.py"


rule clock_pizza_figures:
    input:
        measures=f"{CP_OUT}/measures.parquet",
        runs=f"{CP_OUT}/runs.parquet",
        markers=f"{CP_OUT}/markers.parquet",
    output:
        [
            (
                report(f"{CP_FIGS}/{fig}.png", category="clock_pizza", caption=f"report/{fig}.rst")
                if ext == "png"
                else f"{CP_FIGS}/{fig}.{ext}"
            )
            for fig in CP_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{CP_OUT}/logs/figures.log",
    params:
        out_dir=CP_FIGS,
        code=code("experiments.clock_pizza.figures"),
    script:
        "scripts/figures.py"


rule clock_pizza_numbers:
    input:
        markers=f"{CP_OUT}/markers.parquet",
        runs=f"{CP_OUT}/runs.parquet",
    output:
        f"{CP_OUT}/numbers.json",
    log:
        f"{CP_OUT}/logs/numbers.log",
    resources:
        mem_mb=500,
    params:
        code=code("experiments.clock_pizza.measures"),
    script:
        "scripts/numbers.py"


# The explorer's views: gradient symmetricity, distance irrelevance and the losses, per run.
EXPLORE["clock_pizza"] = f"{CP_OUT}/explorer.json"


rule clock_pizza_explore:
    input:
        table=f"{CP_OUT}/measures.parquet",
        runs=f"{CP_OUT}/runs.parquet",
    output:
        EXPLORE["clock_pizza"],
    log:
        f"{CP_OUT}/logs/explore.log",
    params:
        code=code("experiments.clock_pizza.explore"),
    script:
        "scripts/explore.py"
