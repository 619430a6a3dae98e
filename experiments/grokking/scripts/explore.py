# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.grokking.explore import explore

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    explore(sm.input.measures, sm.input.runs, sm.input.phases, sm.output[0])
