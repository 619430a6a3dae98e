# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.grokking.numbers import numbers

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    numbers(
        sm.input.measures,
        sm.input.runs,
        sm.input.markers,
        sm.params.canonical_seed,
        sm.output[0],
    )
