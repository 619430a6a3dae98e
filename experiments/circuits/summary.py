"""The circuits experiment's markers (one value per run and marker) and the paper's numbers."""

from __future__ import annotations

import math

import pandas as pd

from alignlab.results import write_markers, write_numbers


def _value(measures: pd.DataFrame, run_id: str, measure: str, component: str = "") -> float:
    """The measure at the run's last measured step; NaN where the run has no such measure."""
    rows = measures[
        (measures.run_id == run_id)
        & (measures.measure == measure)
        & (measures.component == component)
    ]
    return float(rows.sort_values("step").value.iloc[-1]) if len(rows) else math.nan


def _ablation(ablations: pd.DataFrame, run_id: str, name: str, split: str, column: str) -> float:
    rows = ablations[
        (ablations.run_id == run_id)
        & (ablations.intervention == name)
        & (ablations.frequency == "")
        & (ablations.split == split)
    ]
    return float(rows[column].iloc[0]) if len(rows) else math.nan  # ablated: canonical only


def run_markers(measures: pd.DataFrame, ablations: pd.DataFrame, run_id: str) -> dict[str, float]:
    """Per-run marker values (final checkpoint of the trained run, or the random init)."""
    return {
        "single_freq_share": _value(measures, run_id, "neuron_single_freq_share"),
        "neuron_mean_explained": _value(measures, run_id, "neuron_mean_explained"),
        "W_L_top_share": _value(measures, run_id, "W_L_top_share"),
        "logit_cos_share": _value(measures, run_id, "logit_cos_share", "key"),
        "keep_only_test_delta": _ablation(
            ablations, run_id, "keep_only_key_freqs", "test", "delta_loss"
        ),
        "remove_key_train_delta": _ablation(
            ablations, run_id, "remove_all_key_freqs", "train", "delta_loss"
        ),
        "remove_non_key_test_delta": _ablation(
            ablations, run_id, "remove_non_key_freqs", "test", "delta_loss"
        ),
        "mean_ablate_unexplained_test_delta": _ablation(
            ablations, run_id, "mean_ablate_unexplained", "test", "delta_loss"
        ),
        "test_loss": _ablation(ablations, run_id, "none", "test", "loss"),
    }


def _percent(share: float) -> str:
    """0.812 -> "81.2%"; more decimals where one would round a share below 1 up to 100%."""
    for decimals in range(1, 5):
        text = f"{100 * share:.{decimals}f}"
        if share >= 1 or float(text) < 100:
            break
    return f"{text}%"


def _by_seed(runs: pd.DataFrame, values: dict, model: str, name: str) -> str:
    """Shares of one kind of run as "seed 0: 81.2%; seed 1: 84.0%", for the text."""
    chosen = runs[runs.model == model].sort_values("seed")
    return "; ".join(
        f"seed {int(seed)}: {_percent(values[rid][name])}"
        for rid, seed in zip(chosen.run_id, chosen.seed, strict=True)
    )


def _canonical_rows(measures: pd.DataFrame, run_id: str) -> dict[str, pd.DataFrame]:
    """The canonical run's rows the text counts: every neuron's frequency and explained share, the
    non-key frequency clusters at its last step, and the heads' patterns at the last step."""
    run = measures.run_id == run_id
    explained = measures[run & (measures.measure == "neuron_explained")]
    last = explained.step.max()
    return {
        "neurons": measures[run & (measures.measure == "neuron_freq")],
        "explained": explained,
        "clusters": measures[
            run
            & (measures.measure == "neuron_cluster_size")
            & (measures.step == measures.step[run].max())
            & (measures.component != "key")
            & (measures.value > 0)
        ],
        "heads": measures[
            run & (measures.measure == "head_pattern_explained") & (measures.step == last)
        ],
        "head_freqs": measures[
            run & (measures.measure == "head_pattern_freq") & (measures.step == last)
        ],
    }


def summarize(
    measures_path, ablations_path, runs_path, threshold: float, out_markers, out_numbers
) -> None:
    """markers.parquet (run_id, marker, value) and numbers.json for the paper."""
    measures, ablations = pd.read_parquet(measures_path), pd.read_parquet(ablations_path)
    runs = pd.read_parquet(runs_path)
    values = {rid: run_markers(measures, ablations, rid) for rid in runs.run_id}
    write_markers(values, out_markers)

    trained = runs[runs.canonical].iloc[0]
    control = runs[runs.model == "random_init"].iloc[0]
    ours, base = values[trained.run_id], values[control.run_id]
    rows = _canonical_rows(measures, trained.run_id)
    explained, heads = rows["explained"], rows["heads"]
    key_list = [int(k) for k in str(trained.key_freqs).split(",")]
    n_key = len(key_list)
    result = {
        "threshold_pct": round(100 * float(threshold)),
        "n_neurons": len(rows["neurons"]),
        "n_key_freqs": n_key,
        "n_directions": 2 * n_key,
        "key_freqs": str(trained.key_freqs),
        "single_freq_share": ours["single_freq_share"],
        "single_freq_share_random": base["single_freq_share"],
        "n_clusters": len(rows["clusters"]),
        "n_neurons_in_key_clusters": int(
            _value(measures, trained.run_id, "neuron_cluster_size", "key")
        ),
        "n_single_freq_neurons": int((explained.value >= threshold).sum()),
        "head_mean_explained": float(heads.value.mean()),
        "n_heads": len(heads),
        "n_heads_on_key_freqs": int(rows["head_freqs"].value.astype(int).isin(key_list).sum()),
        "W_L_top_share": ours["W_L_top_share"],
        "W_L_rest_share": 1.0 - ours["W_L_top_share"],
        "W_L_top_share_random": base["W_L_top_share"],
        "logit_cos_share": ours["logit_cos_share"],
        "logit_cos_share_random": base["logit_cos_share"],
        "test_loss": ours["test_loss"],
        "keep_only_test_delta": ours["keep_only_test_delta"],
        "remove_key_train_delta": ours["remove_key_train_delta"],
        "remove_non_key_test_delta": ours["remove_non_key_test_delta"],
        "mean_ablate_unexplained_test_delta": ours["mean_ablate_unexplained_test_delta"],
        "final_step": int(explained.step.max()),
        "n_seeds": int((runs.model == "trained").sum()),
    }
    for name in ("single_freq_share", "W_L_top_share"):
        result[f"{name}_by_seed"] = _by_seed(runs, values, "trained", name)
        result[f"{name}_by_random_init"] = _by_seed(runs, values, "random_init", name)
    write_numbers(result, out_numbers)
