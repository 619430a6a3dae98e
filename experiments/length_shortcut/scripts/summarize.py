# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.length_shortcut.experiment import summarize

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    summarize(
        sm.params.run_ids,
        sm.params.runs,
        sm.input.tables,
        sm.params.analysis,
        sm.params.env,
        sm.output,
    )
