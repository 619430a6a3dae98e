import pytest
import torch

from alignlab import checkpoints as ckpt
from alignlab.models import ModelConfig, init_params


@pytest.fixture
def cfg():
    return ModelConfig(p=7, d_model=8, n_heads=2, d_head=4, d_mlp=16)


def test_weights_round_trip_and_stack(tmp_path, cfg):
    for step in (0, 10, 20):
        ckpt.save_weights(
            init_params(cfg, step), ckpt.step_path(tmp_path, step), step, cfg.to_dict()
        )
    steps, stack, model = ckpt.load_stack(tmp_path, steps=[0, 10, 20])
    assert steps == [0, 10, 20]
    assert ModelConfig(**model) == cfg
    assert stack["blocks.0.attn.W_Q"].shape == (3, 2, 8, 4)
    assert torch.equal(stack["embed.W_E"][1], init_params(cfg, 10)["embed.W_E"])


def test_atomic_save_leaves_no_temporary_files(tmp_path, cfg):
    ckpt.save_weights(init_params(cfg, 0), ckpt.step_path(tmp_path, 0), 0, cfg.to_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["step_000000.safetensors"]


def test_truncated_checkpoint_is_reported(tmp_path, cfg):
    path = ckpt.step_path(tmp_path, 5)
    ckpt.save_weights(init_params(cfg, 0), path, 5, cfg.to_dict())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ckpt.CheckpointError, match="not a readable safetensors"):
        ckpt.load_weights(path)


def test_foreign_checkpoint_is_reported(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "step_000001.safetensors"
    save_file({"w": torch.zeros(2)}, path, metadata={"format": "pt"})
    with pytest.raises(ckpt.CheckpointError, match="foreign checkpoint"):
        ckpt.load_weights(path)


def test_pickle_file_is_not_loaded(tmp_path):
    path = tmp_path / "step_000001.safetensors"
    torch.save({"w": torch.zeros(2)}, path)  # a pickle under a safetensors name
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_weights(path)


# ----- integrity: checksums, canonical bytes, schedule --------------------------------------
def _saved(tmp_path, cfg, step=5):
    path = ckpt.step_path(tmp_path, step)
    ckpt.save_weights(init_params(cfg, 0), path, step, cfg.to_dict())
    return path


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _header_end(path):
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def test_flipped_byte_in_tensor_data_is_caught_and_names_the_file(tmp_path, cfg):
    path = _saved(tmp_path, cfg)
    _flip(path, _header_end(path) + 100)
    with pytest.raises(ckpt.CheckpointError, match=r"step_000005\.safetensors.*checksum"):
        ckpt.load_weights(path)


def test_every_flipped_header_byte_is_caught(tmp_path, cfg):
    path = _saved(tmp_path, cfg)
    original = path.read_bytes()
    for offset in range(_header_end(path)):  # the length field, the JSON, its padding
        _flip(path, offset)
        with pytest.raises(ckpt.CheckpointError, match="step_000005"):
            ckpt.load_weights(path)
        path.write_bytes(original)


def test_file_renamed_to_another_step_is_caught(tmp_path, cfg):
    path = _saved(tmp_path, cfg, step=5)
    path.rename(ckpt.step_path(tmp_path, 6))
    with pytest.raises(ckpt.CheckpointError, match="file name says step 000006"):
        ckpt.load_weights(ckpt.step_path(tmp_path, 6))


def test_checkpoint_without_checksum_is_rejected_with_a_rerun_hint(tmp_path, cfg):
    from safetensors.torch import save_file

    path = tmp_path / "step_000001.safetensors"
    meta = {"format": "alignlab-weights-v1", "step": "1", "model": "{}"}  # the old format
    save_file(init_params(cfg, 0), path, metadata=meta)
    with pytest.raises(ckpt.CheckpointError, match="another alignlab version.*rerun"):
        ckpt.load_weights(path)
    save_file(init_params(cfg, 0), path, metadata={**meta, "format": ckpt.WEIGHTS_FORMAT})
    with pytest.raises(ckpt.CheckpointError, match="no checksum; rerun"):
        ckpt.load_weights(path)


def test_checkpoints_are_ordinary_safetensors_files(tmp_path, cfg):
    from safetensors.torch import load_file

    params = init_params(cfg, 0)
    loaded = load_file(_saved(tmp_path, cfg))
    assert all(torch.equal(loaded[k], params[k]) for k in params)


_SAVE = """
import sys
from alignlab import checkpoints as ckpt
from alignlab.models import ModelConfig, init_params
cfg = ModelConfig(p=7, d_model=8, n_heads=2, d_head=4, d_mlp=16)
ckpt.save_weights(init_params(cfg, 3), sys.argv[1], 3, cfg.to_dict())
ckpt.save_resume(sys.argv[2], init_params(cfg, 4), 3, {"b": 1, "a": [0.1, "x"]})
"""


def test_same_content_gives_the_same_bytes_in_any_process(tmp_path):
    import os
    import subprocess
    import sys

    for seed in ("1", "2"):  # hash randomisation differs: dict/set order must not leak out
        env = {**os.environ, "PYTHONHASHSEED": seed}
        paths = [str(tmp_path / f"{name}{seed}.safetensors") for name in ("w", "r")]
        subprocess.run([sys.executable, "-c", _SAVE, *paths], env=env, check=True)
    for name in ("w", "r"):
        one, two = (tmp_path / f"{name}{seed}.safetensors" for seed in ("1", "2"))
        assert one.read_bytes() == two.read_bytes()


def test_missing_checkpoint_is_an_error_naming_the_step(tmp_path, cfg):
    for step in (0, 10, 20):
        _saved(tmp_path, cfg, step)
    ckpt.step_path(tmp_path, 10).unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"missing at steps \[10\].*step_000010"):
        ckpt.load_stack(tmp_path, steps=[0, 10, 20])
    _saved(tmp_path, cfg, 10)
    _saved(tmp_path, cfg, 30)  # e.g. left by another run in the same directory
    with pytest.raises(ckpt.CheckpointError, match=r"steps \[30\] are not in the train log"):
        ckpt.load_stack(tmp_path, steps=[0, 10, 20])


def test_stale_temporary_files_are_removed(tmp_path, cfg):
    path = _saved(tmp_path, cfg)
    stale = tmp_path / f".{path.name}.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert ckpt.remove_stale_temps(tmp_path) == [stale]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_sgld_scratch_left_by_a_killed_llc_job_is_removed(tmp_path):
    scratch = tmp_path / "sgld-x1y2"
    (scratch / "samples.zarr").mkdir(parents=True)
    (tmp_path / "llc.parquet").write_bytes(b"kept")
    assert ckpt.remove_stale_temps(tmp_path, pattern="sgld-*") == [scratch]
    assert [p.name for p in tmp_path.iterdir()] == ["llc.parquet"]
