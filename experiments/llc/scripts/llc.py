# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.llc.estimate import llc_run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    llc_run(
        sm.params.run_dir,
        sm.input.dataset,
        dict(sm.params.sgld),
        sm.output.table,
        sm.output.trace,
        every=sm.params.every,
    )
