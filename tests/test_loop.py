"""The training-loop skeleton's one resume policy (alignlab.loop), on a toy trainer with known
answers, and exact resume of the reward-model trainer that runs on it."""

import hashlib
from pathlib import Path

import pytest
import torch

from alignlab import checkpoints as ckpt
from alignlab import loop
from alignlab.preference.env import Env, EnvConfig, make_pairs
from alignlab.preference.model import RMConfig
from alignlab.preference.train import RMTrainer, train_rm

SCHEDULE, STEPS = [0, 3, 6, 9, 10], 10


class Interrupted(Exception):
    pass


class Toy:
    """Noisy SGD on one weight vector: every step draws from the trainer's own generator, so a
    resume that lost the generator state (or anything else) would change the result."""

    model_config = {"toy": 1}

    def __init__(self, fail_at: int | None = None, stop_at: int | None = None):
        self.w = torch.zeros(4, dtype=torch.float64)
        self.gen = torch.Generator().manual_seed(0)
        self.fail_at, self.stop_at = fail_at, stop_at
        self.steps_run, self.loaded = [], False

    def step(self, step):
        if step == self.fail_at:
            raise Interrupted(step)
        noise = torch.randn(4, generator=self.gen, dtype=torch.float64)
        self.w = self.w - 0.1 * (self.w - 1.0) + 0.01 * noise
        self.steps_run.append(step)

    def evaluate(self, step):
        return {"loss": float(((self.w - 1.0) ** 2).sum())}

    def weights(self):
        return {"w": self.w.clone()}

    def stop_early(self, step, log):
        return self.stop_at is not None and step >= self.stop_at

    def resume_tensors(self):
        return {"w": self.w, "rng": self.gen.get_state()}

    def resume_extra(self):
        return {"note": "toy"}

    def load(self, tensors, extra):
        self.w, self.loaded = tensors["w"], True
        self.gen.set_state(tensors["rng"])


def _run(run_dir: Path, trainer=None, fingerprint="fp") -> tuple[Toy, loop.Progress]:
    trainer = trainer or Toy()
    return trainer, loop.run_loop(trainer, run_dir, fingerprint, SCHEDULE, STEPS)


def _files(run_dir: Path) -> dict[str, str]:
    """sha256 of every file the run left (checkpoints and resume state)."""
    return {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


def test_interrupted_run_resumes_bit_identically(tmp_path):
    _, whole = _run(tmp_path / "whole")
    with pytest.raises(Interrupted):
        _run(tmp_path / "cut", Toy(fail_at=7))
    assert ckpt.load_resume(tmp_path / "cut" / loop.RESUME_FILE)[1] == 6
    resumed, progress = _run(tmp_path / "cut")
    assert resumed.loaded and resumed.steps_run == [6, 7, 8, 9]  # continued, not restarted
    assert progress.log == whole.log and progress.finished
    assert _files(tmp_path / "cut") == _files(tmp_path / "whole")


def test_finished_run_is_not_trained_again(tmp_path):
    _run(tmp_path)
    again, progress = _run(tmp_path)
    assert again.loaded and again.steps_run == [] and progress.step == STEPS


def test_fingerprint_mismatch_restarts_and_says_so(tmp_path, capsys):
    with pytest.raises(Interrupted):
        _run(tmp_path / "run", Toy(fail_at=7), fingerprint="old")
    capsys.readouterr()
    restarted, progress = _run(tmp_path / "run", fingerprint="new")
    assert "another config or code; starting afresh" in capsys.readouterr().out
    assert not restarted.loaded and restarted.steps_run == list(range(STEPS))
    _, fresh = _run(tmp_path / "fresh", fingerprint="new")
    assert progress.log == fresh.log
    assert _files(tmp_path / "run") == _files(tmp_path / "fresh")


def test_corrupt_resume_state_restarts_and_says_so(tmp_path, capsys):
    with pytest.raises(Interrupted):
        _run(tmp_path / "run", Toy(fail_at=7))
    path = tmp_path / "run" / loop.RESUME_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    capsys.readouterr()
    restarted, progress = _run(tmp_path / "run")
    assert "resume state failed verification" in capsys.readouterr().out
    assert not restarted.loaded and restarted.steps_run == list(range(STEPS))
    _, whole = _run(tmp_path / "whole")
    assert progress.log == whole.log
    assert _files(tmp_path / "run") == _files(tmp_path / "whole")


def test_stale_temp_files_are_removed_at_start(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".step_000003.safetensors.x.tmp").write_bytes(b"partial")
    _run(tmp_path)
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_early_stop_ends_the_run_and_a_rerun_keeps_it(tmp_path):
    _, progress = _run(tmp_path, Toy(stop_at=3))
    assert [row["step"] for row in progress.log] == [0, 3] and progress.finished
    again, _ = _run(tmp_path, Toy(stop_at=3))
    assert again.steps_run == []
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [0, 3]


def test_schedule_must_hold_first_and_last_step(tmp_path):
    with pytest.raises(ValueError, match="must hold steps 0 and 10"):
        loop.run_loop(Toy(), tmp_path, "fp", [0, 5], STEPS)


# ----- the reward-model trainer on the skeleton ----------------------------------------------
ENV = EnvConfig(repeat_penalty=30.0)
RM_CFG = RMConfig(d_vocab=ENV.d_vocab, n_ctx=ENV.n_ctx, d_model=16, n_layers=1, n_heads=2,
                  d_mlp=32)  # fmt: skip
RM_RUN = {"n_pairs": 120, "heldout_frac": 0.2, "min_steps": 12, "epochs": 1, "batch_size": 16,
          "n_evals": 5, "seed": 0, "lr": 1e-3, "weight_decay": 0.0}  # fmt: skip


def test_reward_model_stopped_midway_resumes_to_identical_results(tmp_path, monkeypatch):
    pairs = make_pairs(Env(ENV), RM_RUN["n_pairs"], seed=0)
    cpu = torch.device("cpu")
    model, rows = train_rm(RM_RUN, RM_CFG, pairs, tmp_path / "whole", cpu)
    step = RMTrainer.step

    def stop_at_7(self, n):
        if n == 7:
            raise Interrupted(n)
        step(self, n)

    monkeypatch.setattr(RMTrainer, "step", stop_at_7)
    with pytest.raises(Interrupted):
        train_rm(RM_RUN, RM_CFG, pairs, tmp_path / "cut", cpu)
    monkeypatch.setattr(RMTrainer, "step", step)
    assert 0 < ckpt.load_resume(tmp_path / "cut" / loop.RESUME_FILE)[1] <= 7
    resumed, resumed_rows = train_rm(RM_RUN, RM_CFG, pairs, tmp_path / "cut", cpu)
    assert resumed_rows == rows
    assert {m for r in rows for m in [r["measure"]]} >= {"eval_accuracy", "train_loss"}
    for name, value in model.params().items():
        assert torch.equal(value, resumed.params()[name])
    assert _files(tmp_path / "cut") == _files(tmp_path / "whole")
