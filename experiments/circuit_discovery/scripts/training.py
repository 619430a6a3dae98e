# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuit_discovery.training import discover

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    discover(
        sm.params.run_dir,
        sm.wildcards.run_id,
        sm.input.key_freqs,
        sm.input.fourier,
        sm.params.analysis,
        sm.params.threshold,
        sm.output[0],
    )
