# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.grokking import make_dataset
from alignlab.jobs import job

with job(snakemake):  # noqa: F821 (injected by Snakemake)
    make_dataset(snakemake.params.spec, snakemake.output[0])  # noqa: F821
