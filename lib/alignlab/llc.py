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
import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from alignlab import checkpoints as ckpt
from alignlab.config import dataclass_from
from alignlab.data import ModularDataset, build_dataset, load_dataset, save_dataset
from alignlab.models import FinalPositionTransformer, ModelConfig
from alignlab.provenance import code_version, config_hash, provenance, write_json
from alignlab.repair import trusted_resume
from alignlab.runtime import configure_torch, resolve_device
from alignlab.tables import flat_config, series
from alignlab.train import TrainingDiverged, load_optimizer_state, optimizer_state_tensors


class ChainFailure(RuntimeError):
    """An SGLD chain diverged (NaN or infinite loss), or chains disagree and that is an error."""


# ---------------------------------------------------------------------------------------------
# The MLP of devinterp's grokking example
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPConfig:
    p: int = 53
    embed_dim: int = 12
    hidden: int = 48

    def to_dict(self) -> dict:
        return asdict(self)


class ModularMLP(nn.Module):
    """logits = W_2 GELU(L_l(E[a]) + L_r(E[b])): devinterp's grokking example model.

    Parameter names and initialisation (torch's nn.Embedding / nn.Linear defaults, drawn in this
    order after `torch.manual_seed(seed)`) are those of the example.
    """

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.p, cfg.embed_dim)
        self.linear1r = nn.Linear(cfg.embed_dim, cfg.hidden, bias=True)
        self.linear1l = nn.Linear(cfg.embed_dim, cfg.hidden, bias=True)
        self.linear2 = nn.Linear(cfg.hidden, cfg.p, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = self.linear1l(self.embedding(a)) + self.linear1r(self.embedding(b))
        return self.linear2(F.gelu(x))


def mlp_from_params(params: dict[str, torch.Tensor], cfg: dict) -> ModularMLP:
    model = ModularMLP(MLPConfig(**cfg))
    try:
        model.load_state_dict(params)
    except RuntimeError as err:
        raise ckpt.CheckpointError(f"checkpoint does not match the MLP {cfg}: {err}") from err
    return model


def mlp_schedule(steps: int, every: int, log_count: int = 0, log_start: int = 100) -> list[int]:
    """Checkpoint steps: every `every` steps, plus `log_count` log-spaced ones from `log_start`
    (the LLC rises within the first few hundred steps), always step 0 and the last."""
    found = set(range(0, steps + 1, every)) | {0, steps}
    if log_count > 0 and log_start < steps:
        found |= set(np.unique(np.round(np.geomspace(log_start, steps, log_count))).astype(int))
    return sorted(found)


_MLP_TRAIN_KEYS = ("seed", "steps", "lr", "weight_decay", "batch_size")


def _evaluate(model, dataset: ModularDataset) -> dict[str, float]:
    out = {}
    with torch.no_grad():
        for split, is_train in (("train", True), ("test", False)):
            a, b, c = dataset.split(is_train)
            logits = model(a, b)
            out[f"{split}_loss"] = F.cross_entropy(logits.double(), c).item()
            out[f"{split}_acc"] = (logits.argmax(-1) == c).double().mean().item()
    return out


def train_mlp(run: dict, dataset_path: Path, run_dir: Path, threads: int = 1) -> pd.DataFrame:
    """Train the example MLP: Adam with coupled L2, a random batch (without replacement) per
    step; checkpoints (safetensors, atomic) on `mlp_schedule`; resume state at each one."""
    configure_torch(threads)
    run_dir = Path(run_dir)
    dataset = load_dataset(dataset_path)
    cfg = MLPConfig(p=run["p"], embed_dim=run["embed_dim"], hidden=run["hidden"])
    schedule = mlp_schedule(
        run["steps"],
        run["checkpoint_every"],
        run.get("checkpoint_log_count", 0),
        run.get("checkpoint_log_start", 100),
    )
    fingerprint = config_hash({"run": run, "code": code_version(__name__)})
    torch.manual_seed(run["seed"])
    model = ModularMLP(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=run["lr"], weight_decay=run["weight_decay"])
    batches = torch.Generator().manual_seed(run["seed"])
    step, log = 0, []
    resume = run_dir / "resume.safetensors"
    trusted = trusted_resume(run_dir, fingerprint)  # verified, or None after cleaning up
    if trusted is not None:
        tensors, step, extra = trusted
        params = {k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")}
        model.load_state_dict(params)
        load_optimizer_state(optimizer, tensors, extra["param_groups"])
        batches.set_state(tensors["batch_rng"])
        log = extra["log"]
    a, b, c = dataset.split(True)
    batch = min(run["batch_size"], len(a))
    with tqdm(total=run["steps"], initial=step, desc=run_dir.name, mininterval=2) as bar:
        while True:
            if step in schedule and (not log or log[-1]["step"] != step):
                metrics = _evaluate(model, dataset)
                if not math.isfinite(metrics["train_loss"]):
                    raise TrainingDiverged(
                        f"{run_dir.name}: train loss is {metrics['train_loss']} at step {step}"
                    )
                log.append({"step": step, **metrics})
                params = {k: v.detach().clone() for k, v in model.state_dict().items()}
                ckpt.save_weights(
                    params, ckpt.step_path(run_dir / "checkpoints", step), step, cfg.to_dict()
                )
                tensors, groups = optimizer_state_tensors(optimizer)
                tensors |= {f"param.{k}": v for k, v in params.items()}
                tensors["batch_rng"] = batches.get_state()
                extra = {"fingerprint": fingerprint, "param_groups": groups, "log": log}
                ckpt.save_resume(resume, tensors, step, extra)
            if step >= run["steps"]:
                break
            idx = torch.randperm(len(a), generator=batches)[:batch]
            loss = F.cross_entropy(model(a[idx], b[idx]), c[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update()
    frame = pd.DataFrame(log)
    frame.to_parquet(run_dir / "train_log.parquet", index=False)
    write_json(provenance(run, torch.device("cpu"), threads), run_dir / "provenance.json")
    return frame


def make_dataset(spec: dict, path: Path) -> None:
    save_dataset(build_dataset(spec["p"], "add", spec["frac_train"], spec["data_seed"]), path)


def dataset_id(run: dict) -> str:
    return f"add-p{run['p']}-frac{run['frac_train']}-seed{run['data_seed']}"


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
) -> LLCEstimate:
    """LLC of `model` (a module of (a, b) -> logits) at its current weights on (a, b, c)."""
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
            init_seed=sgld.init_seed,
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
        est = estimate_llc(_load_model(path), a, b, c, sgld_cfg, work_dir=work_dir)
        rows += [
            (step, "llc", "", est.llc),
            (step, "chains_agree", "", float(est.chains_agree)),
            (step, "init_loss", "", est.init_loss),
            (step, "n_beta", "", est.n_beta),
        ]
        rows += [(step, "llc_chain", str(i), float(v)) for i, v in enumerate(est.per_chain)]
        chain, sgld_step = np.meshgrid(
            np.arange(est.trace.shape[0]), np.arange(est.trace.shape[1]), indexing="ij"
        )
        traces.append(
            pd.DataFrame(
                {
                    "step": step,
                    "chain": chain.ravel(),
                    "sgld_step": sgld_step.ravel(),
                    "loss": est.trace.ravel(),
                }
            )
        )
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


# ---------------------------------------------------------------------------------------------
# Collect, markers, numbers
# ---------------------------------------------------------------------------------------------


def collect(
    run_ids: list[str],
    runs: dict[str, dict],
    tables: list[Path],
    traces: list[Path],
    out_measures: Path,
    out_runs: Path,
    out_traces: Path,
) -> None:
    """Concatenate per-run tables (never recompute); run metadata keyed by run_id.

    `runs[run_id]` holds `model` (mlp | transformer) and the run's config values.
    """
    for paths, out in ((tables, out_measures), (traces, out_traces)):
        frames = [
            pd.read_parquet(path).assign(run_id=rid)
            for rid, path in zip(run_ids, paths, strict=True)
        ]
        pd.concat(frames, ignore_index=True).to_parquet(out, index=False)
    meta = [{"run_id": rid, **flat_config(runs[rid])} for rid in run_ids]
    pd.DataFrame(meta).to_parquet(out_runs, index=False)


def _series(run: pd.DataFrame, measure: str) -> pd.Series:
    return series(run, measure)


def _spearman(x: pd.Series, y: pd.Series) -> float:
    joined = pd.concat([x, y], axis=1, join="inner").dropna()
    if len(joined) < 3:
        return math.nan
    return float(joined.rank().corr().iloc[0, 1])


MARKER_NAMES = (
    "llc_initial",
    "llc_peak",
    "llc_max",
    "llc_final",
    "llc_rise_ratio",
    "llc_fall_ratio",
    "test_fall",
    "chains_agree_frac",
    "spearman_log_train_loss",
    "spearman_log_test_loss",
    "final_test_acc",
)


def run_markers(run: pd.DataFrame, p: int) -> dict[str, float]:
    """Per-run LLC markers: where it peaks, how much it rises to the peak and falls after, and
    how it tracks the losses; `test_fall` is the first step with test loss below 0.5 ln p."""
    llc = _series(run, "llc")
    test_loss, train_loss = _series(run, "test_loss"), _series(run, "train_loss")
    peak = float(llc.idxmax())
    falls = test_loss[(test_loss < 0.5 * math.log(p)) & (test_loss.index > 0)]
    return {
        "llc_initial": float(llc.iloc[0]),
        "llc_peak": peak,
        "llc_max": float(llc.max()),
        "llc_final": float(llc.iloc[-1]),
        "llc_rise_ratio": float(llc.max() / llc.iloc[0]) if llc.iloc[0] > 0 else math.inf,
        "llc_fall_ratio": float(llc.max() / llc.iloc[-1]) if llc.iloc[-1] > 0 else math.inf,
        "test_fall": float(falls.index[0]) if len(falls) else math.nan,
        "chains_agree_frac": float(_series(run, "chains_agree").mean()),
        "spearman_log_train_loss": _spearman(llc, np.log(train_loss)),
        "spearman_log_test_loss": _spearman(llc, np.log(test_loss)),
        "final_test_acc": float(_series(run, "test_acc").iloc[-1]),
    }


def markers(measures_path, runs_path, grokking_markers_path, out: Path) -> None:
    """markers.parquet (run_id, marker, value); transformer runs also get the LLC at the
    grokking experiment's phase boundaries (its markers.parquet, same run_id)."""
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    grok = pd.read_parquet(grokking_markers_path)
    rows = []
    for run_id, run in measures.groupby("run_id"):
        meta = runs.set_index("run_id").loc[run_id]
        values = run_markers(run, int(meta.p))
        if meta.model == "transformer":
            bounds = grok[grok.run_id == run_id].set_index("marker")["value"]
            llc = _series(run, "llc")
            for name in PHASE_BOUNDARIES:
                step = float(bounds.get(name, math.nan))
                values[name] = step
                # measured there (llc_transformer_run); interpolated only if it was not
                at = np.interp(step, llc.index, llc.values) if math.isfinite(step) else math.nan
                values[f"llc_at_{name}"] = float(at)
        rows += [{"run_id": run_id, "marker": k, "value": v} for k, v in values.items()]
    pd.DataFrame(rows, columns=["run_id", "marker", "value"]).to_parquet(out, index=False)


def numbers(markers_path, runs_path, out: Path) -> None:
    """{name: value} for the paper, from the first trained MLP run and the first transformer run,
    and how many MLP seeds generalized (the frozen null, lr 0, is not a seed)."""
    runs = pd.read_parquet(runs_path).sort_values("run_id")
    values = pd.read_parquet(markers_path).pivot_table(
        index="run_id", columns="marker", values="value", dropna=False
    )
    result: dict[str, float | int | str] = {}
    for model, prefix in (("mlp", "mlp"), ("transformer", "tf")):
        chosen = runs[(runs.model == model) & (runs.lr > 0)]
        if chosen.empty:
            continue
        first = chosen.iloc[0]
        v = values.loc[first.run_id].reindex(
            [*MARKER_NAMES, *PHASE_BOUNDARIES, *(f"llc_at_{b}" for b in PHASE_BOUNDARIES)]
        )
        result |= {
            f"{prefix}_p": int(first.p),
            f"{prefix}_steps": int(first.steps),
            f"{prefix}_seed": int(first.seed),
            f"{prefix}_llc_initial": float(v.llc_initial),
            f"{prefix}_llc_peak_step": float(v.llc_peak),
            f"{prefix}_llc_max": float(v.llc_max),
            f"{prefix}_llc_final": float(v.llc_final),
            f"{prefix}_test_fall": float(v.test_fall),
            f"{prefix}_chains_agree_frac": float(v.chains_agree_frac),
            f"{prefix}_spearman_train": float(v.spearman_log_train_loss),
            f"{prefix}_spearman_test": float(v.spearman_log_test_loss),
        }
        for key in ("sgld_lr", "sgld_localization", "sgld_n_beta", "sgld_num_draws"):
            if key in first and pd.notna(first[key]):
                result[f"{prefix}_{key}"] = float(first[key])
        if model == "transformer":
            for name in PHASE_BOUNDARIES:
                result[f"tf_{name}"] = float(v[name])
                result[f"tf_llc_at_{name}"] = float(v[f"llc_at_{name}"])
    mlp = runs[(runs.model == "mlp") & (runs.lr > 0)].run_id
    result["mlp_n_seeds"] = len(mlp)
    result["mlp_n_generalized"] = int(values.reindex(mlp)["test_fall"].notna().sum())
    clean = {
        k: (None if isinstance(x, float) and not math.isfinite(x) else x) for k, x in result.items()
    }
    Path(out).write_text(json.dumps(clean, indent=2) + "\n")
