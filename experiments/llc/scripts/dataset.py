# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.llc.mlp import make_dataset

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    make_dataset(sm.params.spec, sm.output[0])
