"""alignlab.optim's Adam / AdamW take torch.optim's steps, and resume through state_dict."""

from __future__ import annotations

import pytest
import torch

from alignlab import optim


def _problem(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [
        torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in [(5, 3), (3,), (4,)]
    ]
    targets = [torch.randn(p.shape, generator=gen, dtype=dtype) for p in params]
    return params, targets


def _groups(params, kind):
    if kind == "two groups":  # as alignlab.train: W_E with its own lr and weight decay
        return [
            {"params": params[:2], "lr": 3e-2, "weight_decay": 1.0},
            {"params": params[2:], "lr": 1e-2, "weight_decay": 0.0},
        ]
    return params


def _train(opt, params, targets, steps, start=0):
    for step in range(start, start + steps):
        for group in opt.param_groups:  # a warm-up, as the trainers set it
            group["lr"] = group.setdefault("base_lr", group["lr"]) * min((step + 1) / 5, 1.0)
        opt.zero_grad(set_to_none=True)
        loss = sum(((p - t) ** 4).sum() for p, t in zip(params, targets, strict=True))
        loss.backward()
        opt.step()


@pytest.mark.parametrize("kind", ["one group", "two groups"])
@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [
        (optim.AdamW, torch.optim.AdamW, {"betas": (0.9, 0.98), "weight_decay": 0.5}),
        (optim.Adam, torch.optim.Adam, {"lr": 5e-3, "weight_decay": 1e-3}),  # coupled L2
    ],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_same_steps_as_torch_optim(kind, ours, theirs, kwargs, dtype):
    mine, targets = _problem(dtype)
    ref = [p.detach().clone().requires_grad_() for p in mine]
    _train(ours(_groups(mine, kind), **kwargs), mine, targets, 30)
    _train(theirs(_groups(ref, kind), fused=True, **kwargs), ref, targets, 30)
    for p, q in zip(mine, ref, strict=True):
        assert torch.equal(p, q)  # the same kernel
    assert not torch.equal(mine[0], _problem(dtype)[0][0])  # and it did train


def test_state_dict_resumes_exactly_and_matches_torch_layout():
    params, targets = _problem()
    straight = [p.detach().clone().requires_grad_() for p in params]
    _train(optim.AdamW(_groups(straight, "two groups")), straight, targets, 20)

    first = optim.AdamW(_groups(params, "two groups"))
    _train(first, params, targets, 10)
    saved = first.state_dict()
    theirs = torch.optim.AdamW(_groups([p.detach().clone() for p in params], "two groups"))
    assert sorted(saved["state"][0]) == sorted(["step", "exp_avg", "exp_avg_sq"])
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2]]
    assert len(saved["param_groups"]) == len(theirs.state_dict()["param_groups"])

    resumed = [p.detach().clone().requires_grad_() for p in params]
    second = optim.AdamW(_groups(resumed, "two groups"))
    second.load_state_dict(saved)
    _train(second, resumed, targets, 10, start=10)
    for p, q in zip(resumed, straight, strict=True):
        assert torch.equal(p, q)


def test_an_empty_parameter_list_is_an_error():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.AdamW([])
