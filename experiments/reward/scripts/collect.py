# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.runs import collect

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    collect(
        sm.params.run_ids,
        sm.params.runs,
        sm.params.cells,
        sm.input.bon,
        sm.input.logs,
        sm.output.bon,
        sm.output.logs,
        sm.output.runs,
    )
