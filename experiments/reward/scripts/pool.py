# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.train import write_pool

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    write_pool(sm.params.env, sm.params.pool, sm.output[0])
