# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.explore import explore

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    explore(sm.input.curves, sm.output[0])
