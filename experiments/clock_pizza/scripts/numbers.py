# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.clock_pizza.measures import numbers

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    numbers(sm.input.markers, sm.input.runs, sm.output[0])
