# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.backdoor.train import train

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    train(sm.params.run, sm.params.run_dir, threads=sm.threads)
