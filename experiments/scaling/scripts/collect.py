# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.scaling.sweeps import summarize_runs

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    summarize_runs(
        sm.params.run_ids,
        sm.params.runs,
        sm.params.run_dirs,
        sm.params.analysis,
        sm.output.summaries,
        sm.output.runs,
        sm.output.curves,
    )
