# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.grokking import make_dataset
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    make_dataset(sm.params.spec, sm.output[0])
