# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.length_shortcut.explore import explore

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    explore(sm.input.table, sm.input.runs, sm.output[0])
