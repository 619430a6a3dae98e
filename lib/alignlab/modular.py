"""One modular-arithmetic run, the steps every experiment on it shares: dataset -> train ->
progress measures -> collect (used by grokking, clock_pizza, scaling, circuits and llc).

A run config is a flat dict (the experiment config's `defaults` plus the run's overrides); these
functions turn it into the library's typed configs and write each rule's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from alignlab import results
from alignlab.checkpoints import load_stack
from alignlab.config import ConfigError, check_run, dataclass_from
from alignlab.data import build_dataset, load_dataset, save_dataset
from alignlab.measures import progress_measures
from alignlab.models import ModelConfig
from alignlab.train import TrainConfig, train

MODEL_KEYS = (
    "p", "d_model", "n_heads", "d_head", "d_mlp", "act_fn", "attn_rate", "n_layers", "normalization"
)  # fmt: skip
_DATA_KEYS = ("p", "op", "frac_train", "data_seed")
# Keys that describe a run rather than configure it (an extra run's label, a sweep's name).
_BOOKKEEPING = ("label", "sweep")


def dataset_id(run: dict) -> str:
    """Runs that share these values share one dataset file."""
    return f"{run['op']}-p{run['p']}-frac{run['frac_train']}-seed{run['data_seed']}"


def dataset_path(run: dict) -> str:
    """Where the shared dataset rule writes the run's dataset (one file per dataset_id)."""
    return f"data/modular/{dataset_id(run)}.parquet"


def dataset_spec(run: dict) -> dict:
    return {key: run[key] for key in _DATA_KEYS}


def _check_keys(run: dict) -> None:
    """Every key of a flat run goes to the model, the training, the dataset or bookkeeping; a key
    none of them takes (a typo the schema did not see) is an error, never silently dropped."""
    known = {*MODEL_KEYS, *TrainConfig.__dataclass_fields__, *_DATA_KEYS, *_BOOKKEEPING}
    unknown = sorted(set(run) - known)
    if unknown:
        raise ConfigError(f"unknown run key(s) {unknown}; allowed: {sorted(known)}")


def model_config(run: dict) -> ModelConfig:
    _check_keys(run)
    return dataclass_from(ModelConfig, {k: run[k] for k in MODEL_KEYS if k in run}, "model key")


def train_config(run: dict) -> TrainConfig:
    _check_keys(run)
    values = {key: run[key] for key in TrainConfig.__dataclass_fields__ if key in run}
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return dataclass_from(TrainConfig, values, "training key")


def make_dataset(spec: dict, path: Path) -> None:
    ds = build_dataset(spec["p"], spec["op"], spec["frac_train"], spec["data_seed"])
    save_dataset(ds, path)


def train_run(run: dict, dataset_path: Path, run_dir: Path, threads: int) -> None:
    # before any file is written; outside the DAG's layout the run is checked against scaling's
    # run schema, the widest this function trains (grokking's keys plus the general decoder's)
    check_run(run, run_dir, fallback="alignlab:modular_run")
    train(
        model_config(run),
        train_config(run),
        load_dataset(dataset_path),
        Path(run_dir),
        threads=threads,
        run_config=run,
    )


def measure_run(
    run_dir: Path, dataset_path: Path, key_freq_threshold: float, out_table: Path, out_keys: Path
) -> None:
    """Progress measures of every checkpoint of a run, plus the final key frequencies.

    The key frequencies also go into the table (measure `final_key_freq`, component k, value
    W_L's Fourier norm there), so figures need nothing but tidy tables.
    """
    steps, params, model = load_stack(Path(run_dir) / "checkpoints")
    table = progress_measures(
        steps, params, ModelConfig(**model), load_dataset(dataset_path), key_freq_threshold
    )
    key_freqs = table.attrs["key_frequencies"]
    final = table[(table.step == max(steps)) & (table.measure == "fourier_norm_W_L")]
    keys = final[final.component.isin([str(k) for k in key_freqs])]
    table = pd.concat([table, keys.assign(measure="final_key_freq")], ignore_index=True)
    table.to_parquet(out_table, index=False)
    Path(out_keys).write_text(json.dumps({"key_frequencies": key_freqs}) + "\n")


def collect(
    run_ids: list[str],
    runs: dict[str, dict],
    roles: dict[str, str],
    tables: list[Path],
    out_measures,
    out_runs,
) -> None:
    """The per-run measures stacked (never recomputed) and the runs table with each run's role."""
    results.collect(run_ids, runs, roles, tables, out_measures, out_runs)
