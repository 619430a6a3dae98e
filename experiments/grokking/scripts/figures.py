# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.grokking.figures import grokking_figures

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    grokking_figures(
        sm.input.measures,
        sm.input.runs,
        sm.input.phases,
        sm.params.out_dir,
        canonical_seed=sm.params.canonical_seed,
    )
