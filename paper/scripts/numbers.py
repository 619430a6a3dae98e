# Adapts Snakemake's inputs/params to one library call (see paper/rules.smk).
from alignlab.jobs import job
from alignlab.paper import write_numbers

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    write_numbers(list(sm.input), sm.output[0])
