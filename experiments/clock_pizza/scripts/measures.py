# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.clock_pizza.measures import measure_run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    measure_run(
        sm.params.run_dir,
        sm.params.n_samples,
        sm.params.sample_seed,
        sm.output[0],
        every=sm.params.every,
    )
