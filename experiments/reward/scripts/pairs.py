# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.train import write_pairs

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    write_pairs(sm.params.spec, sm.params.n_pairs, sm.output[0])
