import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from alignlab import checkpoints as ckpt
from alignlab import faults
from alignlab.data import build_dataset, save_dataset
from alignlab.modular import model_config, train_config, train_run
from alignlab.train import (
    TrainConfig,
    TrainingDiverged,
    checkpoint_schedule,
    effective_batch_size,
    minibatch,
    train,
)


def _train(run: dict, run_dir: Path) -> pd.DataFrame:
    ds = build_dataset(run["p"], run["op"], run["frac_train"], run["data_seed"])
    return train(model_config(run), train_config(run), ds, run_dir, threads=1, run_config=run)


def test_schedule_includes_first_and_last_step():
    assert checkpoint_schedule(TrainConfig(steps=25, checkpoint_every=10)) == [0, 10, 20, 25]
    log_steps = checkpoint_schedule(
        TrainConfig(steps=1000, checkpoint_spacing="log", checkpoint_count=10)
    )
    assert log_steps[0] == 0 and log_steps[-1] == 1000 and log_steps == sorted(set(log_steps))
    gaps = [b - a for a, b in zip(log_steps[1:], log_steps[2:], strict=False)]
    assert gaps[-1] > gaps[0]  # log-spaced: sparser later


def test_training_learns_and_writes_outputs(tmp_path, tiny_run):
    log = _train(tiny_run, tmp_path)
    assert list(log.step) == list(range(0, 61, 10))
    assert log.train_loss.iloc[-1] < 0.5 * log.train_loss.iloc[0]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == list(log.step)
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["seed"] == 0 and prov["threads"] == 1 and prov["device"] == "cpu"
    assert {"torch", "transformer-lens"} <= set(prov["packages"])


def test_same_seed_twice_gives_identical_tables(tmp_path, tiny_run):
    one, two = _train(tiny_run, tmp_path / "a"), _train(tiny_run, tmp_path / "b")
    pd.testing.assert_frame_equal(one, two, check_exact=True)


def test_diverged_run_stops_with_clear_error(tmp_path, tiny_run):
    with pytest.raises(TrainingDiverged, match="train loss is nan"):
        _train({**tiny_run, "lr": 1e30, "warmup_steps": 0}, tmp_path)
    assert not (tmp_path / "train_log.parquet").exists()  # nothing counts as done


def test_changed_config_does_not_resume_from_old_state(tmp_path, tiny_run):
    _train(tiny_run, tmp_path)
    fresh = _train({**tiny_run, "seed": 1}, tmp_path / "fresh")
    reused = _train({**tiny_run, "seed": 1}, tmp_path)  # same dir, other config
    pd.testing.assert_frame_equal(fresh, reused, check_exact=True)


# Power et al.'s setup: the general 2-layer pre-LN decoder on minibatches.
DECODER_MINIBATCH = {"n_layers": 2, "normalization": "LN", "batch_size": 16}


@pytest.mark.parametrize(
    ("kill_at", "arch"), [(100, {}), (260, {}), (130, DECODER_MINIBATCH)], ids=["100", "260", "2l"]
)
def test_killed_training_resumes_to_identical_results(tmp_path, tiny_run, kill_at, arch):
    run = {**tiny_run, "steps": 400, "checkpoint_every": 20, **arch}
    reference = tmp_path / "reference"
    ds_path = tmp_path / "ds.parquet"
    save_dataset(build_dataset(run["p"], run["op"], run["frac_train"], run["data_seed"]), ds_path)
    interrupted = tmp_path / "interrupted"
    proc = faults.start_training(run, ds_path, interrupted)
    killed_at = faults.kill_when(proc, interrupted, kill_at)
    assert killed_at < run["steps"]
    assert not (interrupted / "train_log.parquet").exists()

    train_run(run, ds_path, interrupted, threads=1)  # resumes
    train_run(run, ds_path, reference, threads=1)  # uninterrupted
    pd.testing.assert_frame_equal(
        pd.read_parquet(interrupted / "train_log.parquet"),
        pd.read_parquet(reference / "train_log.parquet"),
        check_exact=True,
    )
    final = ckpt.step_path(Path("checkpoints"), run["steps"])
    got, _, _ = ckpt.load_weights(interrupted / final)
    want, _, _ = ckpt.load_weights(reference / final)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_early_stopped_run_is_not_trained_further_on_rerun(tmp_path, tiny_run):
    run = {**tiny_run, "steps": 400, "lr": 3e-2, "early_stop_patience": 20, "early_stop_acc": 0.05}
    first = _train(run, tmp_path)
    assert first.step.iloc[-1] < run["steps"]  # stopped early
    again = _train(run, tmp_path)  # e.g. Snakemake reruns the job after a params change
    pd.testing.assert_frame_equal(first, again, check_exact=True)


def test_minibatches_cover_each_epoch_and_depend_only_on_seed_and_step():
    n, size = 50, 8  # 6 batches per epoch; 2 examples sit out each epoch
    epoch = torch.cat([minibatch(step, n, size, seed=3) for step in range(6)])
    assert len(set(epoch.tolist())) == 48
    assert torch.equal(minibatch(7, n, size, seed=3), minibatch(7, n, size, seed=3))
    assert not torch.equal(minibatch(6, n, size, seed=3), minibatch(0, n, size, seed=3))
    assert not torch.equal(minibatch(0, n, size, seed=4), minibatch(0, n, size, seed=3))


def test_power_batch_size_is_at_most_half_the_training_set():
    assert effective_batch_size(TrainConfig(steps=1, batch_size=512), 4704) == 512
    assert effective_batch_size(TrainConfig(steps=1, batch_size=512), 940) == 470
    assert effective_batch_size(TrainConfig(steps=1), 940) is None  # full batch


def test_two_layer_minibatch_training_learns(tmp_path, tiny_run):
    run = {**tiny_run, **DECODER_MINIBATCH, "steps": 150, "lr": 3e-3, "checkpoint_every": 50}
    log = _train(run, tmp_path)
    assert log.train_loss.iloc[-1] < 0.5 * log.train_loss.iloc[0]
    params, _, meta = ckpt.load_weights(tmp_path / ckpt.step_path(Path("checkpoints"), 150))
    assert meta["n_layers"] == 2 and "blocks.1.ln2.w" in params
