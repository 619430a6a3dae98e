"""The numbers the grokking section quotes, from the experiment's tidy tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alignlab.results import write_numbers


def numbers(measures_path, runs_path, markers_path, canonical_seed: int, out: Path) -> None:
    """The numbers the paper quotes, from the canonical run's tables, as {name: value} JSON."""
    runs = pd.read_parquet(runs_path)
    canonical = runs[(runs.seed == canonical_seed) & (runs.role == "canonical")].iloc[0]
    markers = pd.read_parquet(markers_path)
    values = markers[markers.run_id == canonical.run_id].set_index("marker")["value"]
    measures = pd.read_parquet(measures_path)
    keys = measures[(measures.run_id == canonical.run_id) & (measures.measure == "final_key_freq")]
    control = runs[runs.role == "control"]
    result = {
        "p": int(canonical.p),
        "frac_train": float(canonical.frac_train),
        "lr": float(canonical.lr),
        "steps": int(canonical.steps),
        "n_seeds": int((runs.role == "canonical").sum()),
        "key_freqs": ", ".join(sorted(keys.component, key=int)),
        "n_key_freqs": len(keys),
        **{name: float(values[name]) for name in _NUMBER_MARKERS},
    }
    if len(control):
        control_values = markers[markers.run_id == control.run_id.iloc[0]].set_index("marker")
        result["control_test_acc"] = float(control_values.loc["final_test_acc", "value"])
    result |= _across_seeds(runs[runs.role == "canonical"], markers, measures)
    result |= _nulls(runs[runs.role == "null"], markers)
    write_numbers(result, out)


def _nulls(nulls: pd.DataFrame, markers: pd.DataFrame) -> dict:
    """The null runs of restricted-before-test: their training fraction and, per seed, how many
    epochs the restricted loss's fall leads the test loss's ("never" where one does not fall)."""
    if not len(nulls):  # the text still names them
        return {"null_frac_train": "n/a", "null_lead_by_seed": "n/a"}
    wide = markers.pivot_table(index="run_id", columns="marker", values="value", dropna=False)
    rows = nulls.sort_values("seed")
    lead = wide.reindex(rows.run_id)["test_fall"] - wide.reindex(rows.run_id)["restricted_fall"]
    listing = "; ".join(
        f"seed {int(seed)}: " + ("never" if pd.isna(v) else f"{v:,.0f}")
        for seed, v in zip(rows.seed, lead, strict=True)
    )
    return {"null_frac_train": float(rows.frac_train.iloc[0]), "null_lead_by_seed": listing}


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
