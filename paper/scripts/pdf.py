# Adapts Snakemake's inputs/params to one library call (see paper/rules.smk).
from alignlab.jobs import job
from alignlab.paper import build_pdf

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    build_pdf(sm.input.tex, sm.input.bib, sm.output[0], sm.log.latexmk, sm.input.sections)
