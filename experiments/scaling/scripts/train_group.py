# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from alignlab.vectorized_train import train_group

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    train_group(
        sm.params.runs,
        sm.input.dataset,
        sm.params.group_dir,
        sm.params.run_dirs,
        threads=sm.threads,
    )
