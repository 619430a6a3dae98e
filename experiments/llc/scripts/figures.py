# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.llc.figures import llc_figures

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    llc_figures(
        sm.input.measures, sm.input.runs, sm.input.markers, sm.input.phases, sm.params.out_dir
    )
