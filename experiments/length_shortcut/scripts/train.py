# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.length_shortcut.experiment import train

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    train(
        sm.params.run,
        sm.params.env,
        sm.params.run_dir,
        sm.output.log,
        sm.output.provenance,
        threads=sm.threads,
    )
