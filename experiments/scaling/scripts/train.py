# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.grokking import train_run
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    train_run(sm.params.run, sm.input.dataset, sm.params.run_dir, threads=sm.threads)
