"""Local learning coefficient (LLC) over training, estimated with devinterp 2.x's SGLD sampler.

Two models, one function per Snakemake rule:
- devinterp's grokking example (the published rise-then-fall pattern): an MLP on (a + b) mod 53,
  a shared embedding of width 12, one linear map per input position into 48 GELU units, an
  unbiased readout; Adam (lr 5e-3, coupled L2 weight decay 2e-4) on random batches of 128 from
  40% of the pairs. `ModularMLP` and `train_mlp` are our own small model and loop (safetensors
  checkpoints through `alignlab.checkpoints`, exact resume).
- the grokking experiment's transformer, at the checkpoints that experiment wrote.

The estimate (Lau et al. 2023): LLC = n_beta * (E_w[L_n(w)] - L_n(w*)), E over SGLD draws from the
localized tempered posterior around the checkpoint w*. devinterp's pitfalls are handled here:
- it wants a HuggingFace `Dataset` with `input_ids` and a loss_fn returning (batch, seq - 1)
  losses: inputs are rows [a, b, c] and the final-position loss is copied into both columns
  (zero-padding one column would halve the loss and the LLC);
- a model with `cfg.n_heads` is taken for a TransformerLens model (`.to(device,
  print_details=...)`), so models are wrapped in `_PairInputs`, which has no `cfg`;
- a reused `output_path` silently returns the previous result: every checkpoint samples into a
  fresh temporary directory, read and deleted at once (the loss trace is kept in our tables);
- a failed chain only warns and leaves NaN in the trace (and a huge finite `llc_mean`): any
  non-finite trace value raises `ChainFailure`;
- its `llc_mean` averages the burn-in in: the estimate here uses the trace after burn-in;
- it calls gc.collect() twice per chain (about 0.5 s each once transformers is imported):
  `gc.freeze()` before sampling makes those calls cheap.
Chains must agree: |llc_chain - llc| <= chain_rtol * |llc| + chain_atol for every chain, else the
checkpoint is flagged (`chains_agree` = 0) and, with `on_disagreement: error`, the job fails.
"""

from __future__ import annotations

import gc
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from alignlab import checkpoints as ckpt
from alignlab.config import dataclass_from
from alignlab.data import load_dataset
from alignlab.models import FinalPositionTransformer, ModelConfig
from alignlab.runtime import resolve_device
from experiments.llc.mlp import mlp_from_params


class ChainFailure(RuntimeError):
    """An SGLD chain diverged (NaN or infinite loss), or chains disagree and that is an error."""


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SGLDConfig:
    """devinterp `sample()` settings plus the chain-agreement tolerance (see the module doc)."""

    lr: float
    localization: float
    n_beta: float | None = None  # None: n / ln n of the training set
    num_chains: int = 2
    num_burnin_steps: int = 100
    num_draws: int = 200
    batch_size: int = 256
    init_seed: int = 100
    chain_rtol: float = 0.2
    chain_atol: float = 1.0
    on_disagreement: str = "warn"  # "warn" or "error"
    device: str = "cpu"

    @classmethod
    def from_dict(cls, values: dict) -> SGLDConfig:
        return dataclass_from(cls, values, "SGLD settings")


def default_n_beta(n: int) -> float:
    """n / ln n, the inverse temperature of Watanabe's WBIC for n training samples."""
    return n / math.log(n)


class _PairInputs(nn.Module):
    """A model of (a, b) seen by devinterp as a model of input_ids [a, b, c]; no `cfg`, so
    devinterp does not take it for a TransformerLens model."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids[:, 0], input_ids[:, 1])


def final_position_token_loss(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of c given (a, b), copied into both (batch, seq - 1) columns."""
    loss = F.cross_entropy(model(input_ids).float(), input_ids[:, 2], reduction="none")
    return loss[:, None].expand(-1, input_ids.shape[1] - 1)


def sgld_dataset(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    from datasets import Dataset  # lazy: pulls in pyarrow and friends

    ids = torch.stack([a, b, c], dim=1).numpy()
    return Dataset.from_dict({"input_ids": ids}).with_format("torch")


@dataclass
class LLCEstimate:
    llc: float
    per_chain: np.ndarray  # [chain]
    init_loss: float
    trace: np.ndarray  # [chain, sgld step], burn-in included
    n_beta: float
    chains_agree: bool


def llc_from_trace(
    trace: np.ndarray, init_loss: float, n_beta: float, sgld: SGLDConfig
) -> LLCEstimate:
    """The estimate from a loss trace [chain, step]: n_beta * (mean after burn-in - init loss)."""
    trace = np.asarray(trace, dtype=np.float64)
    bad = ~np.isfinite(trace)
    if bad.any() or not math.isfinite(init_loss):
        chains = sorted(set(np.nonzero(bad)[0].tolist()))
        first = int(np.nonzero(bad.any(axis=0))[0][0]) if bad.any() else 0
        raise ChainFailure(
            f"SGLD chain(s) {chains} diverged (non-finite loss from step {first}; init loss "
            f"{init_loss}): lower the SGLD lr ({sgld.lr}) or raise localization "
            f"({sgld.localization})"
        )
    if trace.shape[1] <= sgld.num_burnin_steps:
        raise ValueError(f"trace has {trace.shape[1]} steps, burn-in is {sgld.num_burnin_steps}")
    per_chain = n_beta * (trace[:, sgld.num_burnin_steps :].mean(axis=1) - init_loss)
    llc = float(per_chain.mean())
    agree = bool(np.all(np.abs(per_chain - llc) <= sgld.chain_rtol * abs(llc) + sgld.chain_atol))
    return LLCEstimate(llc, per_chain, init_loss, trace, n_beta, agree)


def estimate_llc(
    model: nn.Module,
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    sgld: SGLDConfig,
    work_dir: Path | None = None,
    seed_offset: int = 0,
) -> LLCEstimate:
    """LLC of `model` (a module of (a, b) -> logits) at its current weights on (a, b, c), with
    SGLD chains seeded from `sgld.init_seed + seed_offset`."""
    from devinterp.slt.sampling import sample  # lazy: imports transformers (seconds)

    gc.collect()
    gc.freeze()  # devinterp's per-chain gc.collect() then skips every object alive so far
    n_beta = sgld.n_beta if sgld.n_beta is not None else default_n_beta(len(a))
    device = str(resolve_device(sgld.device))
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="sgld-") as tmp:
        tree = sample(
            _PairInputs(model),
            sgld_dataset(a, b, c),
            {},
            lr=sgld.lr,
            n_beta=n_beta,
            num_chains=sgld.num_chains,
            num_draws=sgld.num_draws,
            num_burnin_steps=sgld.num_burnin_steps,
            batch_size=sgld.batch_size,
            localization=sgld.localization,
            init_seed=sgld.init_seed + seed_offset,
            device=device,
            output_path=Path(tmp) / "samples.zarr",  # fresh for every checkpoint
            loss_fn=final_position_token_loss,
        )
        data = tree.dataset
        micro = data.sampling_loss_micro
        trace = micro.mean(dim=["batch_sampling", "token_pos"], skipna=False).values
        init_loss = float(data.init_loss.values.mean())
        tree.close()
    return llc_from_trace(trace, init_loss, n_beta, sgld)


# ---------------------------------------------------------------------------------------------
# Per run: LLC at checkpoints, tidy tables
# ---------------------------------------------------------------------------------------------


def _load_model(path: Path) -> nn.Module:
    params, _, cfg = ckpt.load_weights(path)
    if "embed_dim" in cfg:
        return mlp_from_params(params, cfg)
    return FinalPositionTransformer(ModelConfig(**cfg), params)


def select_checkpoints(
    found: list[tuple[int, Path]], every: int | None, also: list[float] = ()
) -> list[tuple[int, Path]]:
    """Checkpoints at multiples of `every` steps (None: all) or in `also`; always the last."""
    if every is None:
        return found
    extra = {int(s) for s in also if math.isfinite(s)}
    chosen = [(s, p) for s, p in found if s % every == 0 or s in extra]
    if found and (not chosen or chosen[-1][0] != found[-1][0]):
        chosen.append(found[-1])
    return chosen


def _estimate_rows(step: int, est: LLCEstimate) -> list[tuple]:
    """(step, measure, component, value) rows of one checkpoint's estimate."""
    rows = [
        (step, "llc", "", est.llc),
        (step, "chains_agree", "", float(est.chains_agree)),
        (step, "init_loss", "", est.init_loss),
        (step, "n_beta", "", est.n_beta),
    ]
    return rows + [(step, "llc_chain", str(i), float(v)) for i, v in enumerate(est.per_chain)]


def _trace_table(step: int, est: LLCEstimate) -> pd.DataFrame:
    """One checkpoint's SGLD loss traces as [step, chain, sgld_step, loss]."""
    chain, sgld_step = np.meshgrid(
        np.arange(est.trace.shape[0]), np.arange(est.trace.shape[1]), indexing="ij"
    )
    return pd.DataFrame(
        {
            "step": step,
            "chain": chain.ravel(),
            "sgld_step": sgld_step.ravel(),
            "loss": est.trace.ravel(),
        }
    )


def llc_run(
    run_dir: Path,
    dataset_path: Path,
    sgld: dict,
    out_table: Path,
    out_trace: Path,
    every: int | None = None,
    also: list[float] = (),
) -> None:
    """LLC at a run's checkpoints (training split), beside its train log, as tidy tables.

    out_table: [step, measure, component, value]; measures llc, llc_chain (component = chain),
    chains_agree (0/1), init_loss, n_beta, and the run's train/test loss and accuracy.
    out_trace: [step, chain, sgld_step, loss], the SGLD loss traces (burn-in included).
    """
    run_dir, sgld_cfg = Path(run_dir), SGLDConfig.from_dict(sgld)
    a, b, c = load_dataset(dataset_path).split(True)
    chosen = select_checkpoints(ckpt.run_checkpoints(run_dir), every, also)
    work_dir = Path(out_table).parent  # this job's own folder: no other job's scratch is there
    ckpt.remove_stale_temps(work_dir, pattern="sgld-*")  # left by a killed LLC job
    rows, traces, disagree = [], [], []
    for step, path in tqdm(chosen, desc=f"LLC {run_dir.name}", mininterval=5):
        # fresh SGLD noise at every checkpoint (seed offset = step): on a frozen model the curve
        # then moves by exactly the estimator's noise, which is what the LLC markers' null measures
        est = estimate_llc(
            _load_model(path), a, b, c, sgld_cfg, work_dir=work_dir, seed_offset=step
        )
        rows += _estimate_rows(step, est)
        traces.append(_trace_table(step, est))
        tqdm.write(f"step {step}: LLC {est.llc:.3f} (chains {np.round(est.per_chain, 3)})")
        if not est.chains_agree:
            disagree.append(step)
            tqdm.write(f"warning: step {step}: SGLD chains disagree: {est.per_chain}")
    if disagree and sgld_cfg.on_disagreement == "error":
        raise ChainFailure(
            f"{run_dir.name}: SGLD chains disagree beyond rtol {sgld_cfg.chain_rtol} + atol "
            f"{sgld_cfg.chain_atol} at steps {disagree}"
        )
    log = pd.read_parquet(run_dir / "train_log.parquet")
    for measure in ("train_loss", "test_loss", "train_acc", "test_acc"):
        rows += [
            (int(s), measure, "", float(v)) for s, v in zip(log.step, log[measure], strict=True)
        ]
    table = pd.DataFrame(rows, columns=["step", "measure", "component", "value"])
    table.sort_values(["measure", "component", "step"]).to_parquet(out_table, index=False)
    pd.concat(traces, ignore_index=True).to_parquet(out_trace, index=False)


PHASE_BOUNDARIES = ("memorization_end", "circuit_end", "cleanup_end")


def llc_transformer_run(
    run_dir: Path,
    dataset_path: Path,
    sgld: dict,
    grokking_markers: Path,
    run_id: str,
    out_table: Path,
    out_trace: Path,
    every: int,
) -> None:
    """`llc_run` on a grokking run, at every `every` steps plus its phase boundaries (from the
    grokking experiment's markers.parquet), so the LLC there is measured, not interpolated."""
    values = pd.read_parquet(grokking_markers)
    values = values[values.run_id == run_id].set_index("marker")["value"]
    also = [float(values.get(name, math.nan)) for name in PHASE_BOUNDARIES]
    llc_run(run_dir, dataset_path, sgld, out_table, out_trace, every=every, also=also)
