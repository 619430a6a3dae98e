# Adapts Snakemake's inputs/params to one library call (see paper/rules.smk).
from alignlab.jobs import job
from alignlab.markers import evaluate_experiment

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    evaluate_experiment(
        sm.wildcards.experiment,
        sm.input.specs,
        sm.input.values,
        sm.input.runs,
        sm.params.scale,
        sm.output[0],
    )
