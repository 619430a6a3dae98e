# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.backdoor.figures import figures

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    figures(sm.input.measures, sm.input.scores, sm.input.runs, sm.params.out_dir)
