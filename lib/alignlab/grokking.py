"""The grokking experiment's steps, one function per Snakemake rule.

A run config is a flat dict (the experiment config's `defaults` plus the run's overrides); these
functions turn it into the library's typed configs and write each rule's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from alignlab.checkpoints import load_stack
from alignlab.config import check_run
from alignlab.data import build_dataset, load_dataset, save_dataset
from alignlab.measures import progress_measures
from alignlab.models import ModelConfig
from alignlab.tables import flat_config
from alignlab.train import TrainConfig, train

_MODEL_KEYS = (
    "p", "d_model", "n_heads", "d_head", "d_mlp", "act_fn", "attn_rate", "n_layers", "normalization"
)  # fmt: skip
_DATA_KEYS = ("p", "op", "frac_train", "data_seed")


def dataset_id(run: dict) -> str:
    """Runs that share these values share one dataset file."""
    return f"{run['op']}-p{run['p']}-frac{run['frac_train']}-seed{run['data_seed']}"


def dataset_spec(run: dict) -> dict:
    return {key: run[key] for key in _DATA_KEYS}


def model_config(run: dict) -> ModelConfig:
    return ModelConfig(**{key: run[key] for key in _MODEL_KEYS if key in run})


def train_config(run: dict) -> TrainConfig:
    fields = TrainConfig.__dataclass_fields__
    values = {key: run[key] for key in fields if key in run}
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return TrainConfig(**values)


def make_dataset(spec: dict, path: Path) -> None:
    ds = build_dataset(spec["p"], spec["op"], spec["frac_train"], spec["data_seed"])
    save_dataset(ds, path)


def train_run(run: dict, dataset_path: Path, run_dir: Path, threads: int) -> None:
    # before any file is written; outside the DAG's layout the run is checked against scaling's
    # run schema, the widest this function trains (grokking's keys plus the general decoder's)
    check_run(run, run_dir, fallback="scaling")
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
    run_ids: list[str], runs: dict[str, dict], tables: list[Path], out_measures, out_runs
) -> None:
    """Concatenate per-run tables (never recompute) and write run metadata keyed by run_id."""
    frames = [
        pd.read_parquet(path).assign(run_id=rid) for rid, path in zip(run_ids, tables, strict=True)
    ]
    pd.concat(frames, ignore_index=True).to_parquet(out_measures, index=False)
    meta = pd.DataFrame([{"run_id": rid, **flat_config(runs[rid])} for rid in run_ids])
    meta.to_parquet(out_runs, index=False)


def numbers(measures_path, runs_path, markers_path, canonical_seed: int, out: Path) -> None:
    """The numbers the paper quotes, from the canonical run's tables, as {name: value} JSON."""
    runs = pd.read_parquet(runs_path)
    canonical = runs[(runs.seed == canonical_seed) & (runs.weight_decay > 0)].iloc[0]
    markers = pd.read_parquet(markers_path)
    values = markers[markers.run_id == canonical.run_id].set_index("marker")["value"]
    measures = pd.read_parquet(measures_path)
    keys = measures[(measures.run_id == canonical.run_id) & (measures.measure == "final_key_freq")]
    control = runs[runs.weight_decay == 0]
    result = {
        "p": int(canonical.p),
        "frac_train": float(canonical.frac_train),
        "lr": float(canonical.lr),
        "steps": int(canonical.steps),
        "n_seeds": int((runs.weight_decay > 0).sum()),
        "key_freqs": ", ".join(sorted(keys.component, key=int)),
        "n_key_freqs": len(keys),
        **{name: float(values[name]) for name in _NUMBER_MARKERS},
    }
    if len(control):
        control_values = markers[markers.run_id == control.run_id.iloc[0]].set_index("marker")
        result["control_test_acc"] = float(control_values.loc["final_test_acc", "value"])
    result |= _across_seeds(runs[runs.weight_decay > 0], markers, measures)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")


def _across_seeds(runs: pd.DataFrame, markers: pd.DataFrame, measures: pd.DataFrame) -> dict:
    """Every seed's test-loss fall, key-frequency count and last epoch, as the text lists them."""
    wide = markers.pivot_table(index="run_id", columns="marker", values="value", dropna=False)
    last = measures.groupby("run_id").step.max()
    rows = runs.sort_values("seed")

    def listing(values) -> str:
        return "; ".join(
            f"seed {int(seed)}: " + ("never" if pd.isna(v) else f"{v:,.0f}")
            for seed, v in zip(rows.seed, values, strict=True)
        )

    return {
        "test_fall_by_seed": listing(wide.reindex(rows.run_id)["test_fall"]),
        "n_key_freqs_by_seed": listing(wide.reindex(rows.run_id)["n_key_freqs"]),
        "last_epoch_by_seed": listing(last.reindex(rows.run_id)),
        "stop_rule": _stop_rule(rows.iloc[0]),
    }


def _stop_rule(run: pd.Series) -> str:
    patience = run.get("early_stop_patience")
    if patience is None or pd.isna(patience):
        return "without early stopping"
    acc = 100 * float(run.get("early_stop_acc", 0.99))
    return f"stopping {int(patience):,} epochs after test accuracy first holds at {acc:g}%"


_NUMBER_MARKERS = (
    "memorization_end",
    "circuit_end",
    "cleanup_end",
    "restricted_fall",
    "test_fall",
    "excluded_rise_ratio",
    "norm_fall_ratio",
    "final_test_acc",
)
