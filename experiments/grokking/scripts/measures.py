# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from alignlab.modular import measure_run

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    measure_run(
        sm.params.run_dir,
        sm.input.dataset,
        sm.params.key_freq_threshold,
        sm.output.table,
        sm.output.key_freqs,
    )
