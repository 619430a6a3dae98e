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
    steps, stack, model = ckpt.load_stack(tmp_path)
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
