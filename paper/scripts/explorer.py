# Adapts Snakemake's inputs/params to one library call (see rules.smk).
from alignlab.explorer.page import build_page
from alignlab.jobs import job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    size = build_page(sm.input.views, sm.input.markers, sm.params.scale, sm.output[0])
    print(f"{sm.output[0]}: {size / 1e6:.1f} MB")
