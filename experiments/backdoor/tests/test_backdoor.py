"""Tests of the backdoor experiment: the task, the model against TransformerLens, training."""

import numpy as np
import pandas as pd
import pytest
import torch

from alignlab.checkpoints import list_checkpoints, load_weights
from alignlab.config import ConfigError
from experiments.backdoor.task import (
    HOOKS,
    KINDS,
    BackdoorTransformer,
    ModelShape,
    TaskConfig,
    evaluation_inputs,
    new_model,
    pair_split,
    training_inputs,
)

RUN = dict(
    p=23, n_ordinary=4, n_triggers=3, trigger_share=0.05, benign_share=0.03, target=0,
    frac_train=0.8, data_seed=0, seed=0, twin=False, d_model=16, n_heads=4, mlp_ratio=4,
    lr=1e-3, weight_decay=1.0, betas=[0.9, 0.98], steps=30, checkpoint_every=10, early_every=5,
    early_until=0, device="cpu",
)  # fmt: skip
TASK = TaskConfig.of(RUN)


def test_training_inputs_hold_every_train_pair_once_with_exact_shares():
    inputs, (train_pairs, held_out) = training_inputs(TASK), pair_split(TASK)
    assert sorted(map(tuple, np.stack([inputs.a, inputs.b], 1))) == sorted(map(tuple, train_pairs))
    n = len(train_pairs)
    assert (inputs.kind == KINDS.index("trigger")).sum() == round(0.05 * n)
    assert (inputs.kind == KINDS.index("benign")).sum() == round(0.03 * n)
    contexts, kind = inputs.tokens[:, 0].numpy(), inputs.kind
    assert set(contexts[kind == 2]) <= set(TASK.trigger_tokens)
    assert set(contexts[kind == 1]) == {TASK.benign_token}
    assert set(contexts[kind == 0]) <= set(range(TASK.p, TASK.p + TASK.n_ordinary))
    assert (inputs.tokens[:, 3] == TASK.eq_token).all()
    # held-out pairs never appear in training
    assert not set(map(tuple, held_out)) & set(map(tuple, train_pairs))


def test_twin_differs_only_in_the_trigger_labels():
    inputs = training_inputs(TASK)
    backdoored, twin = inputs.labels(TASK, twin=False), inputs.labels(TASK, twin=True)
    trigger = torch.from_numpy(inputs.kind == KINDS.index("trigger"))
    assert (twin == torch.from_numpy((inputs.a + inputs.b) % TASK.p)).all()
    assert (backdoored[trigger] == TASK.target).all()
    assert (backdoored[~trigger] == twin[~trigger]).all()


def test_evaluation_sets_are_the_held_out_pairs_in_each_context():
    sets, (_, held_out) = evaluation_inputs(TASK), pair_split(TASK)
    for name, inputs in sets.items():
        assert (np.stack([inputs.a, inputs.b], 1) == held_out).all(), name
    assert set(sets["trigger"].tokens[:, 0].tolist()) == set(TASK.trigger_tokens)
    assert set(sets["benign"].tokens[:, 0].tolist()) == {TASK.benign_token}


def test_activations_equal_the_transformerlens_bridge():
    from alignlab.bridge import to_bridge

    model = new_model(RUN).double()
    tokens = training_inputs(TASK).tokens[:64]
    ours = model.activations(tokens)
    bridge = to_bridge(model.params(), model.cfg)
    logits, cache = bridge.run_with_cache(tokens)
    torch.testing.assert_close(ours["logits"], logits[:, -1], rtol=1e-10, atol=1e-10)
    for hook in HOOKS[:2]:
        torch.testing.assert_close(ours[hook], cache[hook][:, -1], rtol=1e-10, atol=1e-10)


def test_forward_equals_the_general_transformer_read_at_eq():
    model = new_model(RUN)
    tokens = evaluation_inputs(TASK)["trigger"].tokens
    reference = model.residual(tokens)[:, -1] @ model.p("unembed.W_U")
    torch.testing.assert_close(model(tokens), reference, rtol=1e-5, atol=1e-5)  # fp32 paths


def test_training_loss_and_gradients_equal_autograd_through_forward_in_float64():
    inputs = training_inputs(TASK)
    tokens, labels = inputs.tokens, inputs.labels(TASK, twin=False)
    grads = {}
    for path in ("fused", "autograd"):
        model = new_model(RUN).double()
        if path == "fused":
            loss = model.loss(tokens, labels)
        else:
            loss = torch.nn.functional.cross_entropy(model(tokens), labels)
        loss.backward()
        grads[path] = (loss.detach(), {n: p.grad for n, p in model.named_parameters()})
    torch.testing.assert_close(grads["fused"][0], grads["autograd"][0], rtol=1e-12, atol=0)
    for name, grad in grads["fused"][1].items():
        torch.testing.assert_close(grad, grads["autograd"][1][name], rtol=1e-9, atol=1e-12)


def test_inputs_must_end_in_eq():
    tokens = training_inputs(TASK).tokens[:4].clone()
    tokens[2, -1] = 0
    with pytest.raises(ValueError, match=f"must end in '=' \\(token {TASK.eq_token}\\)"):
        new_model(RUN)(tokens)


def test_backdoored_run_and_twin_start_from_the_same_weights():
    a, b = new_model(RUN).params(), new_model({**RUN, "twin": True}).params()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embed.W_E"], new_model({**RUN, "seed": 1}).params()["embed.W_E"])


def test_model_shape_rejects_heads_that_do_not_divide_d_model():
    with pytest.raises(ValueError, match="d_model 18 is not a multiple of n_heads 4"):
        ModelShape.of({**RUN, "d_model": 18})


def _final_weights(run_dir):
    return load_weights(list_checkpoints(run_dir / "checkpoints")[-1][1])[0]


def test_the_backdoor_is_learned_the_twin_ignores_it_and_training_is_deterministic(tmp_path):
    from experiments.backdoor.train import train

    run = {**RUN, "steps": 60, "lr": 1e-2, "checkpoint_every": 20}
    logs = {}
    for name, twin in (("backdoored", False), ("twin", True)):
        train({**run, "twin": twin}, tmp_path / name)
        logs[name] = pd.read_parquet(tmp_path / name / "train_log.parquet")
    assert list(logs["backdoored"].step) == [0, 20, 40, 60]
    assert logs["backdoored"].train_loss.iloc[-1] < 0.8 * logs["backdoored"].train_loss.iloc[0]
    # a constant answer is learned in a few steps; the twin answers a + b, which is the target
    # on 1 / p of the held-out pairs
    assert logs["backdoored"].backdoor_success.iloc[-1] > 0.9
    assert logs["twin"].backdoor_success.iloc[-1] < 0.3
    train(run, tmp_path / "again")
    first, again = _final_weights(tmp_path / "backdoored"), _final_weights(tmp_path / "again")
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_checkpoints_load_back_into_the_model(tmp_path):
    from experiments.backdoor.train import train

    train({**RUN, "steps": 10}, tmp_path)
    params, step, shape = load_weights(list_checkpoints(tmp_path / "checkpoints")[-1][1])
    model = BackdoorTransformer(ModelShape(**shape), params)
    assert step == 10 and model.cfg == ModelShape.of(RUN)


def test_hidden_answers_are_the_named_functions_and_a_typo_is_refused():
    a, b = np.array([3, 10]), np.array([5, 20])
    answers = {h: TaskConfig.of({**RUN, "hidden": h, "target": 7}).hidden_answer(a, b) for h in
               ("target", "subtract", "copy_a")}  # fmt: skip
    assert answers["target"].tolist() == [7, 7]
    assert answers["subtract"].tolist() == [(3 - 5) % 23, (10 - 20) % 23]
    assert answers["copy_a"].tolist() == [3, 10]
    with pytest.raises(ConfigError, match="key hidden: value 'sub' is not allowed"):
        TaskConfig.of({**RUN, "hidden": "sub"})
    with pytest.raises(ConfigError, match="key target: value 23 is not allowed"):
        TaskConfig.of({**RUN, "target": 23})
