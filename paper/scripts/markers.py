# Adapts Snakemake's inputs/params to one library call (see paper/rules.smk).
from alignlab.jobs import job
from alignlab.markers_table import collect_markers

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    collect_markers(
        list(sm.input.tables),
        sm.input.bib,
        sm.output.table,
        sm.output.tex,
        sm.output.controls_tex,
        sm.output.html,
        sm.output.discussion,
    )
