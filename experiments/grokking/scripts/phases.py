# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.grokking.phases import phase_table

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    phase_table(sm.input.measures, sm.input.runs, sm.output.phases, sm.output.markers)
