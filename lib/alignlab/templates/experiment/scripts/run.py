# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.$module import run
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    run(sm.params.run, sm.output[0])
