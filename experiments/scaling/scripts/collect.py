# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.scaling.sweeps import collect

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    collect(list(sm.input), sm.output.runs, sm.output.curves)
