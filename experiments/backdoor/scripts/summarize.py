# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.backdoor.summary import summarize

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    summarize(
        sm.params.run_ids,
        sm.params.runs,
        sm.params.roles,
        sm.input.tables,
        sm.input.scores,
        sm.input.calibration,
        sm.output,
        sm.params.analysis,
        sm.params.calibration,
    )
