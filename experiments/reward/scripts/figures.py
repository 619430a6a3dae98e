# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.figures import reward_figures

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    reward_figures(sm.input.curves, sm.input.fits, sm.params.out_dir, sm.input.ensemble)
