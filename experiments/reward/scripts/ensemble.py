# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.summary import ensemble

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    ensemble(
        sm.input.pool,
        sm.input.scores,
        sm.params.member_ids,
        sm.params.ensembles,
        sm.params.spec,
        sm.params.analysis,
        sm.output.curves,
        sm.output.fits,
    )
