# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.$name.process import figure

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    figure(sm.input.measures, sm.output.pdf, sm.output.png)
