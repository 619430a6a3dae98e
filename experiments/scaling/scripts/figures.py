# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.scaling.figures import scaling_figures

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    scaling_figures(sm.input.runs, sm.input.curves, sm.params.out_dir, sm.params.analysis)
