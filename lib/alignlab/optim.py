"""Adam and AdamW for one training job, without `torch.optim`.

Why not torch.optim: its optimizers import the compiler (`torch._dynamo`) on first use, which
costs 1.4 s per process on this machine (measured 2026-12-02: `make_optimizer` took 1.405 s of a
6.0 s scaling run), and the laptop DAG starts ~125 training jobs. The update is torch's own: the
fused Adam / AdamW kernel that torch.optim calls with `fused=True` (`torch._fused_adamw_`), so
steps are bit-identical to torch.optim.AdamW(fused=True) (tests/test_optim.py); `state_dict()`
has torch's layout, so resume files read the same.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """Adam (eps 1e-8, no amsgrad) over parameter groups; `decoupled` = AdamW's weight decay."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ):
        groups = list(params)
        if not groups:
            raise ValueError("the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        self.decoupled = decoupled
        self.param_groups = [{**defaults, **g, "params": list(g["params"])} for g in groups]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params)

    def _update(self, group: dict, params: list[torch.Tensor]) -> None:
        for p in params:
            if p not in self.state:
                moments = (torch.zeros_like(p, memory_format=torch.preserve_format) for _ in "mv")
                self.state[p] = dict(zip(("exp_avg", "exp_avg_sq"), moments, strict=True))
                self.state[p]["step"] = torch.tensor(0.0)
        by_kind: dict[tuple, list[torch.Tensor]] = {}
        for p in params:  # the fused kernel takes one device and dtype per call
            by_kind.setdefault((p.device, p.dtype), []).append(p)
        beta1, beta2 = group["betas"]
        kernel = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
        for same in by_kind.values():
            states = [self.state[p] for p in same]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            kernel(
                same,
                [p.grad for p in same],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                amsgrad=False,
                maximize=False,
            )

    def state_dict(self) -> dict:
        """torch.optim's layout: state by parameter index, groups with their indices."""
        index, groups = {}, []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                ids.append(index.setdefault(id(p), len(index)))
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        flat = [p for g in self.param_groups for p in g["params"]]
        state = {index[id(p)]: dict(self.state[p]) for p in flat if p in self.state}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        flat = [p for g in self.param_groups for p in g["params"]]
        for group, saved in zip(self.param_groups, state_dict["param_groups"], strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
            group["betas"] = tuple(group["betas"])
        self.state = {
            flat[int(i)]: {k: v.to(flat[int(i)].device).clone() for k, v in s.items()}
            for i, s in state_dict["state"].items()
        }


def AdamW(params: Iterable, **kwargs) -> Adam:  # noqa: N802 (reads as torch's class name)
    """Adam with decoupled weight decay (default 0.01, as torch.optim.AdamW)."""
    kwargs.setdefault("weight_decay", 0.01)
    return Adam(params, decoupled=True, **kwargs)
