# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.figures.clock_pizza import clock_pizza_figures
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    clock_pizza_figures(sm.input.measures, sm.input.runs, sm.input.markers, sm.params.out_dir)
