# Adapts Snakemake's inputs/params to one library call (grokking's and clock_pizza's collect).
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
