# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuits.explore import explore

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    explore(
        sm.params.run_dir,
        sm.params.run_id,
        sm.input.measures,
        sm.input.phases,
        sm.params.chunk,
        sm.output[0],
    )
