# $name: simulate -> collect -> markers and numbers -> figure. Replace the toy process in
# process.py (beside this file) with your experiment; keep the rule shapes.
from alignlab.config import expand_runs, load_experiment, run_roles

${upper}_CFG = load_experiment(ROOT / "experiments/$name", SCALE)
${upper}_RUNS = expand_runs(${upper}_CFG)
${upper}_ROLES = run_roles(${upper}_CFG)  # canonical: the seeds; control: no decay
${upper}_OUT = f"results/$name/{SCALE}"
${upper}_FIGS = "paper/figures/$name"

TARGETS["$name"] = [f"{${upper}_FIGS}/curve.pdf", f"{${upper}_FIGS}/curve.png", f"{${upper}_OUT}/numbers.json"]


rule ${name}_run:
    output:
        f"{${upper}_OUT}/runs/{{run_id}}/measures.parquet",
    params:
        run=lambda wc: ${upper}_RUNS[wc.run_id],
        code=code("experiments.$name.process"),
    log:
        f"{${upper}_OUT}/logs/run/{{run_id}}.log",
    script:
        "scripts/run.py"


rule ${name}_summarize:
    input:
        tables=expand(f"{${upper}_OUT}/runs/{{run_id}}/measures.parquet", run_id=sorted(${upper}_RUNS)),
    output:
        measures=f"{${upper}_OUT}/measures.parquet",
        runs=f"{${upper}_OUT}/runs.parquet",
        markers=f"{${upper}_OUT}/markers.parquet",
        numbers=f"{${upper}_OUT}/numbers.json",
    params:
        run_ids=sorted(${upper}_RUNS),
        runs=${upper}_RUNS,
        roles=${upper}_ROLES,
        threshold=${upper}_CFG["analysis"]["threshold"],
        code=code("experiments.$name.process"),
    log:
        f"{${upper}_OUT}/logs/summarize.log",
    script:
        "scripts/summarize.py"


rule ${name}_figure:
    input:
        measures=f"{${upper}_OUT}/measures.parquet",
    output:
        pdf=f"{${upper}_FIGS}/curve.pdf",
        png=report(f"{${upper}_FIGS}/curve.png", category="$name", caption="report/curve.rst"),
    params:
        code=code("experiments.$name.process"),
    log:
        f"{${upper}_OUT}/logs/figure.log",
    script:
        "scripts/figure.py"
