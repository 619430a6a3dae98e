# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from alignlab.modular import make_dataset

with job(snakemake):  # noqa: F821 (injected by Snakemake)
    make_dataset(snakemake.params.spec, snakemake.output[0])  # noqa: F821
