# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.backdoor.measure import measure_run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    measure_run(
        sm.params.run,
        sm.params.analysis,
        sm.params.run_dir,
        sm.input.log,
        sm.output.measures,
        sm.output.scores,
        sm.output.hist,
    )
