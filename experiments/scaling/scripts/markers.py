# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.scaling.sweeps import markers

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    markers(sm.input.runs, sm.output[0])
