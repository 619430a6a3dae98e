# The modular-arithmetic run every experiment on (a op b) mod p shares: dataset -> train.
# Experiments register their runs in MODULAR (see the Snakefile) and name the outputs by path:
#   data/modular/{dataset}.parquet                          one file per alignlab.modular.dataset_id
#   results/{experiment}/{scale}/runs/{run_id}/train_log.parquet, provenance.json
# Checkpoints and the resume state live beside the log but are not declared outputs: Snakemake
# deletes a failed job's outputs, and training must resume from them.
from alignlab.modular import dataset_id, dataset_path, dataset_spec

MODULAR_DATASETS = {
    dataset_id(run): dataset_spec(run)
    for registered in MODULAR.values()
    for run in registered["runs"].values()
}
# A dataset job takes the highest priority of the trainings that read it: rule priority does not
# flow upstream, and a prioritized training waits for its dataset (a laptop run measured grokking's
# dataset made after 17 minutes, and its trainings with it).
MODULAR_DATASET_PRIORITY = {}
for _registered in MODULAR.values():
    for _run in _registered["runs"].values():
        _id = dataset_id(_run)
        MODULAR_DATASET_PRIORITY[_id] = max(
            MODULAR_DATASET_PRIORITY.get(_id, 0), _registered.get("priority", 0)
        )


def _modular_run(wc):
    return MODULAR[wc.experiment]["runs"][wc.run_id]


def _trained_elsewhere():
    """Runs another rule trains (a scaling group on a GPU): the per-run rule must not match them."""
    ids = sorted(rid for registered in MODULAR.values() for rid in registered.get("grouped", ()))
    return f"(?!(?:{'|'.join(ids)})/)[^/]+" if ids else "[^/]+"


rule modular_dataset:
    output:
        "data/modular/{dataset}.parquet",
    log:
        "results/logs/modular_dataset/{dataset}.log",
    priority: lambda wc: MODULAR_DATASET_PRIORITY[wc.dataset]
    resources:
        mem_mb=500,
    params:
        spec=lambda wc: MODULAR_DATASETS[wc.dataset],
        code=code("alignlab.modular"),
    script:
        "scripts/dataset.py"


rule modular_train:
    input:
        dataset=lambda wc: dataset_path(_modular_run(wc)),
    output:
        log=f"results/{{experiment}}/{SCALE}/runs/{{run_id}}/train_log.parquet",
        provenance=f"results/{{experiment}}/{SCALE}/runs/{{run_id}}/provenance.json",
    log:
        f"results/{{experiment}}/{SCALE}/logs/train/{{run_id}}.log",
    benchmark:
        f"results/{{experiment}}/{SCALE}/benchmarks/train/{{run_id}}.tsv"
    wildcard_constraints:
        experiment="|".join(MODULAR),
        run_id=_trained_elsewhere(),
    # among ready jobs, an experiment's `priority` (default 0) starts first: the long trainings
    # whose results other experiments wait for, so the DAG does not end on a serial tail
    priority: lambda wc: MODULAR[wc.experiment].get("priority", 0)
    resources:
        mem_mb=2000,
        runtime=lambda wc: MODULAR[wc.experiment]["runtime"],
        gpu=lambda wc: 1 if SCALE == "paper" else 0,
    params:
        run=_modular_run,
        run_dir=lambda wc: f"results/{wc.experiment}/{SCALE}/runs/{wc.run_id}",
        code=code("alignlab.modular"),
    script:
        "scripts/train.py"
