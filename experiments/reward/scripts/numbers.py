# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.numbers import numbers

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    numbers(
        sm.input.fits,
        sm.input.runs,
        sm.params.block,
        sm.output.numbers,
        sm.output.table,
        ensemble_fits=sm.input.ensemble,
        out_ensemble_table=sm.output.ensemble_table,
        pool_path=sm.input.pool,
    )
