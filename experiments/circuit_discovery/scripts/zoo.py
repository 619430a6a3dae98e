# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuit_discovery.evaluate import run_task

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    run_task(sm.wildcards.task, sm.params.zoo, sm.output)
