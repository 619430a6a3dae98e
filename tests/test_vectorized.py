"""The vectorized many-runs model equals single-run FinalPositionTransformer, run by run."""

import pandas as pd
import pytest
import torch

from alignlab.checkpoints import list_checkpoints, load_weights, step_path
from alignlab.data import build_dataset
from alignlab.models import FinalPositionTransformer, ModelConfig, final_position_loss, init_params
from alignlab.modular import model_config, train_config
from alignlab.testing import assert_close_fp, rounding_tol
from alignlab.train import TrainConfig, make_optimizer, set_warmup_lr, train
from alignlab.vectorized import (
    RunHyper,
    VectorizedAdamW,
    per_run_loss,
    stack_params,
    vectorized_logits,
)
from alignlab.vectorized_train import train_vectorized

CFG = ModelConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32)
SEEDS = (0, 1, 2)


def _data():
    ds = build_dataset(CFG.p, "add", 0.5, 0)
    return ds.split(True)


@pytest.mark.parametrize("attn_rate", [1.0, 0.5])
def test_logits_and_gradients_match_single_runs(attn_rate):
    # Batched over runs vs one run: different kernels, so compared in float64, where rounding
    # stays far below the tolerance whatever the CPU (both paths keep the weights' dtype).
    cfg = ModelConfig(**{**CFG.to_dict(), "attn_rate": attn_rate})
    a, b, c = _data()
    singles = [{name: v.double() for name, v in init_params(cfg, seed).items()} for seed in SEEDS]
    stacked = {k: v.requires_grad_(True) for k, v in stack_params(singles).items()}
    logits = vectorized_logits(cfg, stacked, a, b)
    per_run_loss(logits, c).sum().backward()
    for r, params in enumerate(singles):
        model = FinalPositionTransformer(cfg, params)
        ref = model(a, b)
        final_position_loss(ref, c).backward()
        assert logits.dtype == torch.float64
        assert_close_fp(logits[r], ref, n=cfg.d_mlp, depth=4, dtype=torch.float64, name="logits")
        for name, param in model.named_parameters():
            grad = stacked[name].grad[r]
            assert_close_fp(grad, param.grad, n=len(a), depth=4, dtype=torch.float64, name=name)


def test_optimizer_steps_match_torch_adamw_per_run():
    """Per-run lr / wd / W_E group, warm-up, and a masked run that must not move.

    In float64, like the forward test: batched and per-run gradients round differently.
    """
    a, b, c = _data()
    tcs = [
        TrainConfig(steps=5, lr=1e-2, weight_decay=1.0, warmup_steps=2, seed=0),
        TrainConfig(steps=5, lr=3e-3, weight_decay=0.0, warmup_steps=2, seed=1),
        TrainConfig(
            steps=5,
            lr=5e-3,
            weight_decay=2.0,
            warmup_steps=2,
            seed=2,
            embed_lr=1e-3,
            embed_weight_decay=0.0,
        ),  # fmt: skip
    ]
    singles = [{k: v.double() for k, v in init_params(CFG, tc.seed).items()} for tc in tcs]
    stacked = {k: v.requires_grad_(True) for k, v in stack_params(singles).items()}
    opt = VectorizedAdamW(stacked, RunHyper.from_configs(tcs, "cpu"), betas=(0.9, 0.98))
    active = torch.tensor([True, True, False])
    frozen = {k: v[2].detach().clone() for k, v in stacked.items()}
    for step in range(4):
        opt.zero_grad()
        per_run_loss(vectorized_logits(CFG, stacked, a, b), c).sum().backward()
        opt.step(active, lr_factor=min(step / 2, 1.0))
    for r in (0, 1):
        model = FinalPositionTransformer(CFG, singles[r])
        optim = make_optimizer(model, tcs[r])
        for step in range(4):
            set_warmup_lr(optim, step, tcs[r].warmup_steps)
            optim.zero_grad()
            final_position_loss(model(a, b), c).backward()
            optim.step()
        for name, param in model.named_parameters():
            got = stacked[name][r]
            assert got.dtype == torch.float64
            # the gradients' rounding (sums over the pairs), through four Adam steps
            assert_close_fp(got, param, n=len(a), depth=4, dtype=torch.float64, name=name)
    for name, value in frozen.items():
        assert torch.equal(stacked[name][2], value)  # masked: untouched


def test_vectorized_training_matches_single_run_logs(tmp_path, tiny_run):
    """A short group run gives, per run, the single-run trainer's log to fp32 rounding."""
    runs = [{**tiny_run, "steps": 40, "seed": s, "lr": lr} for s, lr in ((0, 1e-2), (1, 3e-3))]
    ds = build_dataset(tiny_run["p"], "add", tiny_run["frac_train"], 0)
    # Both train in fp32 along different kernels: each step adds the rounding of the gradients'
    # sums over the training pairs, so the tolerance grows with the number of steps.
    n_train = int(ds.is_train.sum())
    rtol = rounding_tol(n_train, depth=40)
    logs = train_vectorized(
        model_config(runs[0]),
        [train_config(r) for r in runs],
        ds,
        tmp_path / "group",
        run_dirs=[tmp_path / "v0", tmp_path / "v1"],
        run_configs=runs,
    )
    for r, run in enumerate(runs):
        ref = train(model_config(run), train_config(run), ds, tmp_path / f"s{r}", run_config=run)
        pd.testing.assert_frame_equal(logs[r], ref, check_exact=False, rtol=rtol, atol=0)
        assert (tmp_path / f"v{r}" / "train_log.parquet").exists()
        # the same checkpoint schedule as the single-run trainer, with close weights
        steps = [s for s, _ in list_checkpoints(tmp_path / f"v{r}" / "checkpoints")]
        assert steps == [s for s, _ in list_checkpoints(tmp_path / f"s{r}" / "checkpoints")]
        got, _, _ = load_weights(step_path(tmp_path / f"v{r}" / "checkpoints", 40))
        want, _, _ = load_weights(step_path(tmp_path / f"s{r}" / "checkpoints", 40))
        for name, value in want.items():
            assert_close_fp(got[name], value, n=n_train, depth=40, name=name)


def test_early_stop_per_run_matches_the_single_run_trainer(tmp_path, tiny_run):
    """Each run stops where the single-run trainer stops; its log ends there."""
    runs = [{**tiny_run, "steps": 60, "seed": s, "early_stop_patience": 10,
             "early_stop_acc": 1e-9} for s in (0, 1, 2)]  # fmt: skip
    ds = build_dataset(tiny_run["p"], "add", tiny_run["frac_train"], 0)
    tcs = [train_config(r) for r in runs]
    logs = train_vectorized(model_config(runs[0]), tcs, ds, tmp_path / "group")
    lengths = set()
    for r, run in enumerate(runs):
        ref = train(model_config(run), train_config(run), ds, tmp_path / f"s{r}", run_config=run)
        assert list(logs[r].step) == list(ref.step)
        lengths.add(len(ref))
    assert min(lengths) < 7  # at least one run stopped early


def test_group_with_different_shapes_is_refused(tmp_path, tiny_run):
    ds = build_dataset(tiny_run["p"], "add", tiny_run["frac_train"], 0)
    tcs = [train_config(tiny_run), train_config({**tiny_run, "steps": 30})]
    with pytest.raises(ValueError, match="share steps"):
        train_vectorized(model_config(tiny_run), tcs, ds, tmp_path)
    deep = {**tiny_run, "n_layers": 2, "normalization": "LN"}
    with pytest.raises(ValueError, match="one-layer, no-LN models at full batch only"):
        train_vectorized(model_config(deep), [train_config(deep)] * 2, ds, tmp_path)


class _Killed(Exception):
    pass


def test_a_killed_group_resumes_to_the_files_of_an_uninterrupted_one(
    tmp_path, tiny_run, monkeypatch
):
    """The group runs on the shared loop: killed mid-run, a rerun continues from its last resume
    state (not from step 0) and leaves byte-identical per-run files."""
    from alignlab import vectorized_train

    # run 1 barely moves (lr 1e-5): its test accuracy holds above 5% and it stops at step 10,
    # before the kill at step 27; run 0's falls below 5% and it trains the whole budget
    runs = [{**tiny_run, "steps": 40, "seed": s, "lr": lr, "early_stop_patience": 10,
             "early_stop_acc": 0.05} for s, lr in ((0, 1e-2), (1, 1e-5))]  # fmt: skip
    ds = build_dataset(tiny_run["p"], "add", tiny_run["frac_train"], 0)
    args = (model_config(runs[0]), [train_config(r) for r in runs], ds)

    def train(root):
        dirs = [root / "r0", root / "r1"]
        return train_vectorized(*args, root / "group", run_dirs=dirs, run_configs=runs), dirs

    whole, whole_dirs = train(tmp_path / "whole")
    real_step, steps_run = vectorized_train.GroupTrainer.step, []

    def step(self, step):
        if step == 27 and "restart" not in steps_run:
            raise _Killed
        steps_run.append(step)
        real_step(self, step)

    monkeypatch.setattr(vectorized_train.GroupTrainer, "step", step)
    with pytest.raises(_Killed):
        train(tmp_path / "cut")
    steps_run.append("restart")
    resumed, cut_dirs = train(tmp_path / "cut")
    assert steps_run[steps_run.index("restart") + 1] > 0  # continued, not restarted
    assert list(whole[1].step) == [0, 10] and list(whole[0].step) == [0, 10, 20, 30, 40]
    for r in range(2):
        pd.testing.assert_frame_equal(resumed[r], whole[r], check_exact=True)
        assert _files(cut_dirs[r]) == _files(whole_dirs[r])
    assert list_checkpoints(tmp_path / "cut" / "group" / "checkpoints") == []  # split, removed


def _files(run_dir):
    """Bytes of every checkpoint and the train log of one run folder."""
    paths = sorted(run_dir.glob("checkpoints/*")) + [run_dir / "train_log.parquet"]
    return {p.name: p.read_bytes() for p in paths}
