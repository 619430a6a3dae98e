# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuit_discovery.figures import figures

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    figures(sm.input.auc, sm.input.roc, sm.input.training, sm.input.phases, sm.params.out_dir)
