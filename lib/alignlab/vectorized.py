"""Many runs of one shape as ONE model: stacked parameters with a leading run dimension.

On a GPU, a sweep of small runs (seeds, learning rates, weight decays) leaves the device idle if
each run trains alone. Here R runs of the same model shape train together: every parameter is
stacked to [R, ...] (TransformerLens names and shapes after the run axis), the forward pass is the
same exact final-position math as `alignlab.models.FinalPositionTransformer` with a batched matmul
per layer, and the optimiser is AdamW written out with per-run hyper-parameters as tensors [R]
(lr, weight decay, and W_E's own lr / weight decay for Liu et al.'s decoder-only setting). A run
that has generalized is frozen by masking (its parameters, moments and step count stop changing),
so each run's result equals training it alone, to fp32 rounding. This module is the math (model,
loss, optimizer, which runs may share a group); `alignlab.vectorized_train` trains a group on
`alignlab.loop` and splits its results per run into the single-run layout.

The summed loss sum_r loss_r has, for run r's parameters, exactly run r's own gradient, so one
backward pass gives every run's gradient. Tested against FinalPositionTransformer on one step:
logits and gradients allclose for every run (tests/test_vectorized.py).

On this 2-core CPU, stacking gains little (the step is matmul-bound: stacking 4 seeds measured
1.03x at p = 113 and 1.29x at p = 59; bench/sweep_throughput.py): there, sweeps run as separate
1-thread jobs. Runs of one group must share the model shape, the dataset (all runs see the same
pairs), the step budget and the evaluation interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from alignlab.models import ACTIVATIONS, ModelConfig
from alignlab.train import TrainConfig, checkpoint_schedule

EMBED = "embed.W_E"


def stack_params(params: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-run parameter dicts -> one dict of [R, ...] tensors (same names)."""
    names = list(params[0])
    return {name: torch.stack([p[name] for p in params]) for name in names}


def unstack_params(stacked: dict[str, torch.Tensor], run: int) -> dict[str, torch.Tensor]:
    """Run `run`'s parameters (detached copies) from a stacked dict."""
    return {name: value[run].detach().clone() for name, value in stacked.items()}


def vectorized_logits(
    cfg: ModelConfig, params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Final-position logits [R, batch, p] of R stacked runs on inputs "a b =" (a, b: [batch]).

    The math of FinalPositionTransformer.forward with a leading run axis on every parameter.
    """
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    W_Q, W_K = params["blocks.0.attn.W_Q"], params["blocks.0.attn.W_K"]
    W_V, W_O = params["blocks.0.attn.W_V"], params["blocks.0.attn.W_O"]
    W_in, b_in = params["blocks.0.mlp.W_in"], params["blocks.0.mlp.b_in"]
    W_out, b_out = params["blocks.0.mlp.W_out"], params["blocks.0.mlp.b_out"]
    W_U = params["unembed.W_U"]
    R, h, dh, m = W_E.shape[0], cfg.n_heads, cfg.d_head, cfg.d_model
    batch = a.shape[0]

    x_eq = W_E[:, cfg.eq_token] + W_pos[:, 2]  # [R, m]
    q = torch.einsum("rm,rhmd->rhd", x_eq, W_Q)
    k_dot_q = torch.einsum("rhmd,rhd->rmh", W_K, q) / math.sqrt(dh)  # [R, m, h]
    W_V_flat = W_V.permute(0, 2, 1, 3).reshape(R, m, h * dh)  # [R, m, h*dh]
    proj = torch.cat([k_dot_q, W_V_flat], dim=2)  # [R, m, h + h*dh]

    # Per-token tables for positions 0 and 1, [R, p, h + h*dh], gathered by one-hot matmuls.
    gathered = []
    for tok, pos in ((a, 0), (b, 1)):
        table = torch.bmm(W_E[:, : cfg.p] + W_pos[:, pos : pos + 1], proj)
        one_hot = F.one_hot(tok, cfg.p).to(W_E.dtype)  # [batch, p]
        gathered.append(torch.matmul(one_hot, table))  # [R, batch, h + h*dh]
    eq_row = torch.bmm(x_eq.unsqueeze(1), proj).squeeze(1)  # [R, h + h*dh]

    scores = torch.stack(
        [gathered[0][..., :h], gathered[1][..., :h], eq_row[:, None, :h].expand(R, batch, h)],
        dim=-1,
    )  # [R, batch, h, 3]
    pattern = scores.softmax(dim=-1)
    if cfg.attn_rate != 1.0:
        pattern = cfg.attn_rate * pattern + (1.0 - cfg.attn_rate) / cfg.n_ctx
    values = torch.stack(
        [
            gathered[0][..., h:].reshape(R, batch, h, dh),
            gathered[1][..., h:].reshape(R, batch, h, dh),
            eq_row[:, h:].reshape(R, 1, h, dh).expand(R, batch, h, dh),
        ],
        dim=3,
    )  # [R, batch, h, 3, dh]
    z = (pattern.unsqueeze(-1) * values).sum(dim=3)  # [R, batch, h, dh]
    resid_mid = x_eq[:, None] + torch.bmm(z.reshape(R, batch, h * dh), W_O.reshape(R, h * dh, m))
    post = ACTIVATIONS[cfg.act_fn](torch.bmm(resid_mid, W_in) + b_in[:, None])
    resid_post = resid_mid + torch.bmm(post, W_out) + b_out[:, None]
    return torch.bmm(resid_post, W_U)


def per_run_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Float64 cross-entropy per run: logits [R, batch, p], labels [batch] -> [R]."""
    log_probs = logits.double().log_softmax(dim=-1)
    index = labels.expand(logits.shape[0], -1).unsqueeze(-1)
    return -log_probs.gather(-1, index).squeeze(-1).mean(dim=-1)


@dataclass
class RunHyper:
    """Per-run AdamW settings as [R] tensors (the decoder group and W_E's own group)."""

    lr: torch.Tensor
    weight_decay: torch.Tensor
    embed_lr: torch.Tensor
    embed_weight_decay: torch.Tensor

    @classmethod
    def from_configs(cls, tcs: Sequence[TrainConfig], device) -> RunHyper:
        def col(values):
            return torch.tensor(values, dtype=torch.float64, device=device)

        return cls(
            lr=col([tc.lr for tc in tcs]),
            weight_decay=col([tc.weight_decay for tc in tcs]),
            embed_lr=col([tc.lr if tc.embed_lr is None else tc.embed_lr for tc in tcs]),
            embed_weight_decay=col(
                [
                    tc.weight_decay if tc.embed_weight_decay is None else tc.embed_weight_decay
                    for tc in tcs
                ]
            ),
        )


class VectorizedAdamW:
    """torch.optim.AdamW (eps 1e-8, no amsgrad), one instance per run, as batched tensor ops.

    Each run r has its own lr, weight decay (per parameter group: W_E vs the rest) and step
    count; `active` [R] bool masks runs out: their parameters, moments and step count are left
    exactly as they were. The order of operations follows torch's single-tensor AdamW so results
    agree with it to fp32 rounding.
    """

    def __init__(self, params, hyper: RunHyper, betas=(0.9, 0.98), eps: float = 1e-8):
        self.params = params  # name -> leaf tensor [R, ...] with requires_grad
        self.hyper = hyper
        self.beta1, self.beta2 = betas
        self.eps = eps
        R = next(iter(params.values())).shape[0]
        device = next(iter(params.values())).device
        self.step_count = torch.zeros(R, dtype=torch.float64, device=device)
        self.exp_avg = {n: torch.zeros_like(p) for n, p in params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()}

    @torch.no_grad()
    def step(self, active: torch.Tensor, lr_factor: float = 1.0) -> None:
        b1, b2 = self.beta1, self.beta2
        self.step_count += active.double()
        t = self.step_count.clamp(min=1)
        bias1 = 1 - b1**t
        bias2_sqrt = (1 - b2**t).sqrt()
        for name, param in self.params.items():
            grad = param.grad
            if grad is None:
                continue
            is_embed = name == EMBED
            lr = (self.hyper.embed_lr if is_embed else self.hyper.lr) * lr_factor
            wd = self.hyper.embed_weight_decay if is_embed else self.hyper.weight_decay
            shape = (-1,) + (1,) * (param.dim() - 1)

            def per_run(x, dtype=param.dtype, shape=shape):
                return x.to(dtype).reshape(shape)

            mask = active.reshape(shape)
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            decayed = param * per_run(1 - lr * wd)
            m_new = m.lerp(grad, 1 - b1)
            v_new = v * b2 + (1 - b2) * grad * grad
            denom = v_new.sqrt() / per_run(bias2_sqrt) + self.eps
            updated = decayed - per_run(lr / bias1) * (m_new / denom)
            param.copy_(torch.where(mask, updated, param))
            m.copy_(torch.where(mask, m_new, m))
            v.copy_(torch.where(mask, v_new, v))

    def zero_grad(self) -> None:
        for param in self.params.values():
            param.grad = None


def check_group(model_cfgs: Sequence[ModelConfig], tcs: Sequence[TrainConfig]) -> None:
    """Runs trained together must share the model shape, betas, budget and schedule, and be
    the fast model's shape (one layer, no LN) at full batch."""
    deep = [c for c in model_cfgs if not c.is_one_layer]
    if deep or any(tc.batch_size is not None for tc in tcs):
        raise ValueError(
            "the vectorized model trains one-layer, no-LN models at full batch only "
            f"(got n_layers {deep[0].n_layers if deep else 1}, batch_size "
            f"{[tc.batch_size for tc in tcs]}); train these runs one by one"
        )
    for name, values in (
        ("model shape", [c for c in model_cfgs]),
        ("betas", [tc.betas for tc in tcs]),
        ("steps", [tc.steps for tc in tcs]),
        ("warmup_steps", [tc.warmup_steps for tc in tcs]),
        ("checkpoint schedule", [tuple(checkpoint_schedule(tc)) for tc in tcs]),
        ("early_stop_patience", [tc.early_stop_patience for tc in tcs]),
        ("early_stop_acc", [tc.early_stop_acc for tc in tcs]),
    ):
        if len(set(values)) != 1:
            found = sorted(set(map(str, values)))
            raise ValueError(f"runs trained together must share {name}; got {found}")
