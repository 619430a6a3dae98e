# Adapts Snakemake's inputs/params to one library call (see ../modular.smk).
from alignlab.jobs import job
from alignlab.modular import train_run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    train_run(sm.params.run, sm.input.dataset, sm.params.run_dir, threads=sm.threads)
