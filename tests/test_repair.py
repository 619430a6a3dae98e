"""A damaged run is repaired by rerunning its training job, to the files an untouched run has."""

from pathlib import Path

import pandas as pd
import pytest

from alignlab import checkpoints as ckpt
from alignlab import faults
from alignlab.data import build_dataset, save_dataset
from alignlab.modular import measure_run, train_run


@pytest.fixture
def dataset(tmp_path, tiny_run) -> Path:
    path = tmp_path / "ds.parquet"
    spec = (tiny_run["p"], tiny_run["op"], tiny_run["frac_train"], tiny_run["data_seed"])
    save_dataset(build_dataset(*spec), path)
    return path


@pytest.fixture
def reference(tmp_path, tiny_run, dataset) -> Path:
    """An untouched run."""
    train_run(tiny_run, dataset, tmp_path / "reference", threads=1)
    return tmp_path / "reference"


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every checkpoint and the resume state, by name: the run's state, byte for byte."""
    paths = [run_dir / "resume.safetensors", *sorted((run_dir / "checkpoints").iterdir())]
    return {path.name: path.read_bytes() for path in paths}


def _measures(run_dir: Path, dataset: Path) -> pd.DataFrame:
    out = run_dir / "measures.parquet"
    measure_run(run_dir, dataset, 0.5, out, run_dir / "key_frequencies.json")
    return pd.read_parquet(out)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-50])


def _flip_data_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x10
    path.write_bytes(bytes(data))


# (file to damage, damage, what the rerun says)
DAMAGE = {
    "truncated": ("checkpoints/step_000030.safetensors", _truncate,
                  "checkpoint step_000030.safetensors failed verification: .*"
                  "no resume state before step 60: restarting from step 0"),
    "deleted": ("checkpoints/step_000020.safetensors", Path.unlink,
                "checkpoint step_000020.safetensors is missing; .*restarting from step 0"),
    "final_flipped": ("checkpoints/step_000060.safetensors", _flip_data_byte,
                      r"step_000060.safetensors failed verification: .*checksum mismatch.*"
                      r"resuming from step 60 \(the resume state\) to write it again"),
    "resume_flipped": ("resume.safetensors", _flip_data_byte,
                       "resume state failed verification: .*restarting from step 0"),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_run_fails_measures_then_is_repaired_by_rerunning_training(
    tmp_path, tiny_run, dataset, reference, damage, capsys
):
    run_dir = tmp_path / "run"
    train_run(tiny_run, dataset, run_dir, threads=1)
    name, damage_file, said = DAMAGE[damage]
    damage_file(run_dir / name)
    if name.startswith("checkpoints/"):  # the measures refuse the run, naming the file
        with pytest.raises(ckpt.CheckpointError, match=Path(name).stem):
            _measures(run_dir, dataset)
    capsys.readouterr()
    train_run(tiny_run, dataset, run_dir, threads=1)  # as `--forcerun <train rule>` does
    assert pd.Series(capsys.readouterr().out).str.contains(said).any()
    assert _files(run_dir) == _files(reference)
    pd.testing.assert_frame_equal(
        pd.read_parquet(run_dir / "train_log.parquet"),
        pd.read_parquet(reference / "train_log.parquet"),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(
        _measures(run_dir, dataset), _measures(reference, dataset), check_exact=True
    )


def test_rerun_removes_temporary_files_and_untrusted_checkpoints(
    tmp_path, tiny_run, dataset, reference, capsys
):
    run_dir = tmp_path / "run"
    train_run(tiny_run, dataset, run_dir, threads=1)
    (run_dir / ".resume.safetensors.x1.tmp").write_bytes(b"half")
    (run_dir / "checkpoints/.step_000070.safetensors.x2.tmp").write_bytes(b"half")
    ckpt.step_path(run_dir / "checkpoints", 70).write_bytes(b"not in the log")
    train_run(tiny_run, dataset, run_dir, threads=1)
    out = capsys.readouterr().out
    assert "removed .resume.safetensors.x1.tmp, left by an interrupted write" in out
    assert "deleted checkpoints it cannot trust at steps [70]" in out
    assert faults.temp_files(run_dir) == []
    assert _files(run_dir) == _files(reference)


def test_killed_inside_a_checkpoint_write_leaves_nothing_after_the_rerun(
    tmp_path, tiny_run, dataset, reference
):
    run_dir = tmp_path / "killed"
    proc = faults.start_training(tiny_run, dataset, run_dir, write_delay=0.3)
    assert faults.kill_in_write(proc, run_dir, min_step=20).endswith(".tmp")
    assert faults.temp_files(run_dir)  # the kill left a temporary file behind
    train_run(tiny_run, dataset, run_dir, threads=1)
    assert faults.temp_files(run_dir) == []
    assert _files(run_dir) == _files(reference)


def test_trainings_in_separate_processes_write_identical_bytes(
    tmp_path, tiny_run, dataset, reference, monkeypatch
):
    for seed in ("1", "2"):  # other hash seeds: no dict or set order may reach a file
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        assert faults.start_training(tiny_run, dataset, tmp_path / seed).wait() == 0
    assert _files(tmp_path / "1") == _files(tmp_path / "2") == _files(reference)
