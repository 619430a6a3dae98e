# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from alignlab.modular import collect

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    collect(
        sm.params.run_ids,
        sm.params.runs,
        sm.params.roles,
        sm.input.tables,
        sm.output.measures,
        sm.output.runs,
    )
