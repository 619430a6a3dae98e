# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.figures.grokking import grokking_figures
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    grokking_figures(
        sm.input.measures,
        sm.input.runs,
        sm.input.phases,
        sm.params.out_dir,
        canonical_seed=sm.params.canonical_seed,
    )
