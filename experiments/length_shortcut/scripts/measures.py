# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.length_shortcut.experiment import measure

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    measure(
        sm.params.run,
        sm.params.env,
        sm.params.analysis,
        sm.params.run_dir,
        sm.input.log,
        sm.output[0],
    )
