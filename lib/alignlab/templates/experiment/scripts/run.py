# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.$name.process import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    run(sm.params.run, sm.output[0])
