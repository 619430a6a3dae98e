# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.backdoor.calibration import run_calibration

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    run_calibration(sm.params.calibration, sm.output[0])
