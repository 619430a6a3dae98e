# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuits.figures import circuits_figures

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    circuits_figures(
        sm.input.measures,
        sm.input.spectrum,
        sm.input.ablations,
        sm.input.runs,
        sm.input.phases,
        sm.params.out_dir,
        threshold=sm.params.threshold,
    )
