# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuits.summary import summarize

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    summarize(
        sm.input.measures,
        sm.input.ablations,
        sm.input.runs,
        sm.params.threshold,
        sm.output.markers,
        sm.output.numbers,
    )
