# Adapts Snakemake's inputs/params to one library call (see ../modular.smk).
from alignlab.jobs import job
from alignlab.modular import make_dataset

sm = snakemake  # noqa: F821 (injected by Snakemake)
with job(sm):
    make_dataset(sm.params.spec, sm.output[0])
