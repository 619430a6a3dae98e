# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.llc.estimate import llc_transformer_run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    llc_transformer_run(
        sm.params.run_dir,
        sm.input.dataset,
        dict(sm.params.sgld),
        sm.input.grokking_markers,
        sm.wildcards.run_id,
        sm.output.table,
        sm.output.trace,
        every=sm.params.every,
    )
