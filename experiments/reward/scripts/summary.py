# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.summary import summarize

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    a = sm.params.analysis
    summarize(
        sm.input.bon,
        sm.input.runs,
        sm.params.cells,
        a["n_boot"],
        a["boot_seed"],
        a["z_threshold"],
        sm.output.fits,
        sm.output.curves,
        sm.output.markers,
        ensemble_fits=sm.input.ensemble,
        member_ids=sm.params.member_ids,
    )
