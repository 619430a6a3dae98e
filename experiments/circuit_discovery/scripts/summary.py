# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.jobs import job
from experiments.circuit_discovery.summary import summarize

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    summarize(
        sm.params.runs,
        {name: sm.input[name] for name in ("auc", "roc", "checks")},
        sm.input.training,
        sm.params.training_seeds,
        sm.input.grokking_markers,
        sm.params.analysis,
        sm.output,
    )
