# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.scaling.sweeps import summarize_run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    summarize_run(
        sm.params.run_id, sm.params.run, sm.params.run_dir, sm.params.analysis, sm.output[0]
    )
