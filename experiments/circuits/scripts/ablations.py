# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuits.ablate import ablate_circuits

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    ablate_circuits(
        sm.params.source_run_dir,
        sm.input.dataset,
        sm.input.key_freqs,
        sm.params.analysis,
        sm.output[0],
    )
