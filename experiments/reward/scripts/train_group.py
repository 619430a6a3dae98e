# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.reward.train import RunFiles, run_group

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    out = sm.output
    run_group(
        sm.params.runs,
        sm.params.env,
        sm.params.analysis,
        sm.input.pairs,
        sm.input.pool,
        sm.params.group_dir,
        sm.params.run_dirs,
        RunFiles.each(out.logs, out.bon, out.provenance, out.scores or [None] * len(out.logs)),
        threads=sm.threads,
    )
