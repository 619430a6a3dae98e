# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.train import run_experiment

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    run_experiment(
        sm.params.run,
        sm.params.env,
        sm.params.analysis,
        None,  # the oracle reads no pairs
        sm.input.pool,
        sm.params.run_dir,
        sm.output.log,
        sm.output.bon,
        sm.output.provenance,
        threads=sm.threads,
    )
