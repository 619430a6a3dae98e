# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.llc.mlp import train_mlp

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    train_mlp(sm.params.run, sm.input.dataset, sm.params.run_dir, threads=sm.threads)
