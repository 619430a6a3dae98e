# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.clock_pizza import numbers
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    numbers(sm.input.markers, sm.input.runs, sm.output[0])
