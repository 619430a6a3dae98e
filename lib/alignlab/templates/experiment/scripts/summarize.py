# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.$module import summarize
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    summarize(sm.params.run_ids, sm.params.runs, sm.input.tables, sm.params.threshold, sm.output)
