# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuits.measure import measure_circuits

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    measure_circuits(
        sm.params.source_run_dir,
        sm.input.dataset,
        sm.input.key_freqs,
        sm.params.analysis,
        sm.output.measures,
        sm.output.spectrum,
        sm.output.runs,
        sm.params.other_seeds,
    )
