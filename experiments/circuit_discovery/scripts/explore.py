# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuit_discovery.explore import explore

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    explore(sm.input.auc, sm.input.training, sm.input.phases, sm.params.seeds, sm.output[0])
