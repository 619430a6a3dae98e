# Adapts Snakemake's inputs/params to one library call (see paper/rules.smk).
from alignlab.jobs import job
from alignlab.paper import write_sections

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    write_sections(sm.params.experiments, sm.output[0])
