"""The length shortcut in a reward model, watched from inside (after Singhal et al. 2023).

Evaluation sets (drawn once per run from `Env`, independent of the training pairs):
- groups: `n_groups` prompts x `group_size` (8) base completions of each;
- length-balanced pairs: the pairs of completions inside each group, labelled by gold alone
  (higher gold wins), pairs of equal length or equal gold dropped, and the larger of the two
  classes "chosen is longer" / "chosen is shorter" subsampled at random to the size of the
  smaller (`balanced_pairs`), so that a reward that only read length would score exactly 1/2;
- shifted copies: each group completion with length L <= len_max - shift, lengthened to L + shift
  by the same Markov chain (the base sampler draws len_max tokens and cuts them at L, so the
  shifted copy is "the same completion, longer"; gold changes with it).

The reward is the scalar head at the EOS index (sequences are right-padded, attention is causal).
Everything below runs in a TransformerLens 4.x bridge (`alignlab.bridge.to_bridge`) with TL hook
names. The residual at EOS "after layer" l is `blocks.{l}.hook_resid_post`; "embed" is
`blocks.0.hook_resid_pre` (= hook_embed + hook_pos_embed). All measures are read at EOS.

Definitions (x_i: a residual vector at EOS of sample i; "within groups": every variable is
first centred on its group's mean, so that the prompt's effect is removed):
- head direction h: the reward is W_U . LN_final(x) = (h . x) / sigma(x) + const, with
  h = P(gamma * W_U) (gamma: ln_final.w, P removes the mean over d_model, which LayerNorm
  subtracts); without LayerNorm h = W_U and sigma = 1.
- feature directions of a layer: the least-squares coefficients (a [2, d_model] matrix) of the
  within-group residuals on within-group [length, gold content]; row 0 is the length direction
  (how the residual moves per extra token at fixed gold content), row 1 the gold direction.
  gold content = gold's per-token values plus its bigram bonuses: gold without its length term
  and without the rare repetition penalty (which dominates gold's variance but which small RMs
  do not learn in this budget, so that a probe for it reads ~0 at every step).
- head alignment (`head_align_length`, `head_align_gold`): cosine of a layer's feature direction
  with h. Positive: the residual moves towards higher reward as the feature grows.
- direct attribution: the reward at EOS is exactly sum_c (h . c_i) / sigma_i + const over the
  components c = hook_embed, hook_pos_embed, blocks.{l}.hook_attn_out, blocks.{l}.hook_mlp_out
  (sigma_i: ln_final.hook_scale at EOS). `attr_length[c]` is the within-group least-squares slope
  of component c's contribution on length, in units of the reward's within-group standard
  deviation per token; the components sum to the total (`attr_length[total]`).
- activation patching: run the base completion, overwrite the residual at its EOS at one layer
  with the shifted copy's residual at the shifted EOS (`run_with_hooks`), read the reward.
  `patch_effect[layer]` = mean(r_patched - r_base) in within-group reward-sd units;
  `shift_effect` = mean(r_shifted - r_base) in the same units (the full effect of lengthening by
  `shift` tokens); `patch_frac[layer]` = patch_effect / shift_effect (1 at the last layer by
  construction, since the head reads only that residual).
- probes: ridge regression (features standardised on the training half, `ridge` penalty) from a
  layer's residual at EOS to length and to gold content, trained on half of the groups, R^2 on
  the other half (`probe_length`, `probe_gold`); reported also minus the step-0 checkpoint's
  value (`probe_length_rel`, `probe_gold_rel`), because length is decodable from the positional
  embedding at EOS even at initialisation.
- behaviour: `wg_corr_reward_length` (and `_gold`): Pearson correlation of reward with length
  within each group of 8, averaged over groups (`wg_corr_gold_length`: gold's own, the value a
  reward model that learned gold exactly would have); accuracy (strict r_chosen > r_rejected) on the
  balanced pairs split by whether the chosen completion is the longer one (`acc_chosen_longer`,
  `acc_chosen_shorter`), their mean (`acc_balanced`) and difference (`acc_gap`).
- onset of a signal over training: the first step at which its rise over step 0 reaches `frac`
  (1/2) of its largest rise, interpolated linearly in log(1 + step) between checkpoints
  (`onset_step`). The experiment applies it to the excess of a length-biased run over its paired
  control (same seed: same init, same pairs and batch order, only the relabelled pairs differ),
  which is 0 at step 0 and isolates what the biased labels add; the question "does the internal
  signal show the shortcut before behaviour does?" is answered by comparing onsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from alignlab.preference.env import Batch, Env


# ----- evaluation sets -----------------------------------------------------------------------
@dataclass
class EvalSets:
    tokens: np.ndarray  # [n, n_ctx] groups, group-major (group g = rows g*k .. g*k+k-1)
    eos: np.ndarray
    group: np.ndarray
    length: np.ndarray
    gold: np.ndarray
    gold_content: np.ndarray
    shift_index: np.ndarray  # rows of the groups that have a shifted copy
    shift_tokens: np.ndarray
    shift_eos: np.ndarray
    pairs: dict[str, np.ndarray]  # length-balanced pairs: chosen, rejected (rows), chosen_longer


def grouped_completions(env: Env, rng: np.random.Generator, n_groups: int, size: int) -> Batch:
    prompt, plen = env.sample_prompts(rng, n_groups)
    idx = np.repeat(np.arange(n_groups), size)
    return env.sample_completions(rng, prompt[idx], plen[idx])


def lengthened(batch: Batch, shift: int, len_max: int) -> tuple[np.ndarray, Batch]:
    """(rows that can be lengthened, the same completions `shift` tokens longer)."""
    rows = np.flatnonzero(batch.completion_len + shift <= len_max)
    taken = batch.take(rows)
    return rows, Batch(
        taken.prompt, taken.prompt_len, taken.completion, taken.completion_len + shift
    )


def balanced_pairs(group_size: int, length, gold, seed: int) -> dict[str, np.ndarray]:
    """Gold-labelled pairs inside groups (rows g*k + i, g*k + j), with as many where the chosen
    completion is the longer as where it is the shorter; equal length or equal gold dropped.
    Returns row indices `chosen`, `rejected` and the boolean `chosen_longer`."""
    n_groups = len(length) // group_size
    i, j = np.triu_indices(group_size, 1)
    base = (np.arange(n_groups) * group_size)[:, None]
    a, b = (base + i).ravel(), (base + j).ravel()
    keep = (length[a] != length[b]) & (gold[a] != gold[b])
    a, b = a[keep], b[keep]
    a_wins = gold[a] > gold[b]
    chosen, rejected = np.where(a_wins, a, b), np.where(a_wins, b, a)
    longer = length[chosen] > length[rejected]
    rng = np.random.default_rng([seed, 5_555])
    idx_long, idx_short = np.flatnonzero(longer), np.flatnonzero(~longer)
    n = min(len(idx_long), len(idx_short))
    rows = np.sort(np.concatenate([rng.permutation(idx_long)[:n], rng.permutation(idx_short)[:n]]))
    return {"chosen": chosen[rows], "rejected": rejected[rows], "chosen_longer": longer[rows]}


def eval_sets(env: Env, n_groups: int, group_size: int, shift: int, seed: int) -> EvalSets:
    rng = np.random.default_rng([seed, 8_888])
    batch = grouped_completions(env, rng, n_groups, group_size)
    tokens, eos = env.tokens(batch)
    parts = env.gold_parts(batch)
    gold = env.gold(batch)
    length = batch.completion_len.astype(float)
    rows, longer = lengthened(batch, shift, env.cfg.len_max)
    shift_tokens, shift_eos = env.tokens(longer)
    return EvalSets(
        tokens=tokens,
        eos=eos,
        group=np.repeat(np.arange(n_groups), group_size),
        length=length,
        gold=gold,
        gold_content=parts["tokens"] + parts["bigrams"],
        shift_index=rows,
        shift_tokens=shift_tokens,
        shift_eos=shift_eos,
        pairs=balanced_pairs(group_size, length, gold, seed),
    )


# ----- statistics ----------------------------------------------------------------------------
def group_centre(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    """x minus its group's mean (x: [n] or [n, d])."""
    x = np.asarray(x, dtype=float)
    n_groups = int(group.max()) + 1
    flat = x.reshape(len(x), -1)
    sums = np.zeros((n_groups, flat.shape[1]))
    np.add.at(sums, group, flat)
    means = sums / np.bincount(group, minlength=n_groups)[:, None]
    return (flat - means[group]).reshape(x.shape)


def within_group_corr(x: np.ndarray, y: np.ndarray, group: np.ndarray) -> float:
    """Pearson correlation of x and y inside each group, averaged over groups (groups where x or
    y is constant are skipped)."""
    xc, yc = group_centre(x, group), group_centre(y, group)
    n_groups = int(group.max()) + 1
    sxy, sxx, syy = (np.bincount(group, w, minlength=n_groups) for w in (xc * yc, xc**2, yc**2))
    ok = (sxx > 1e-12 * (1 + sxx.max())) & (syy > 1e-12 * (1 + syy.max()))
    return float(np.mean(sxy[ok] / np.sqrt(sxx[ok] * syy[ok]))) if ok.any() else float("nan")


def within_group_slope(y: np.ndarray, x: np.ndarray, group: np.ndarray) -> float:
    """Least-squares slope of y on x after centring both within groups."""
    xc, yc = group_centre(x, group), group_centre(y, group)
    return float((xc * yc).sum() / (xc**2).sum())


def ridge_r2(x_train, y_train, x_test, y_test, penalty: float) -> float:
    """Held-out R^2 of ridge regression with an intercept (features standardised on train)."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    y_mean = y_train.mean()
    w = np.linalg.solve(a.T @ a + penalty * np.eye(a.shape[1]), a.T @ (y_train - y_mean))
    resid = y_test - (b @ w + y_mean)
    return float(1.0 - (resid**2).sum() / ((y_test - y_test.mean()) ** 2).sum())


def feature_directions(x: np.ndarray, features: np.ndarray, group: np.ndarray) -> np.ndarray:
    """[k, d]: least-squares coefficients of within-group x [n, d] on within-group features
    [n, k] (row j: how x moves per unit of feature j with the others held fixed)."""
    xc, fc = group_centre(x, group), group_centre(features, group)
    return np.linalg.lstsq(fc, xc, rcond=None)[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def onset_step(steps, values, frac: float = 0.5) -> float:
    """First step at which values - values[step 0] reaches `frac` of its largest rise,
    interpolated linearly in log(1 + step); nan if the signal never rises."""
    steps = np.asarray(steps, dtype=float)
    rise = np.asarray(values, dtype=float) - values[0]
    top = np.nanmax(rise)
    if not np.isfinite(top) or top <= 0:
        return float("nan")
    level = frac * top
    j = int(np.argmax(rise >= level))
    if j == 0:
        return float(steps[0])
    t0, t1 = np.log1p(steps[j - 1]), np.log1p(steps[j])
    w = (level - rise[j - 1]) / (rise[j] - rise[j - 1])
    return float(np.expm1(t0 + w * (t1 - t0)))


# ----- the model in the bridge ---------------------------------------------------------------
def layer_hooks(n_layers: int) -> dict[str, str]:
    """Residual at EOS per layer: short name -> TransformerLens hook name."""
    hooks = {"embed": "blocks.0.hook_resid_pre"}
    hooks |= {f"block{i}": f"blocks.{i}.hook_resid_post" for i in range(n_layers)}
    return hooks


def component_hooks(n_layers: int) -> dict[str, str]:
    """Components whose outputs sum to the final residual: short name -> hook name."""
    hooks = {"embed": "hook_embed", "pos_embed": "hook_pos_embed"}
    for i in range(n_layers):
        hooks |= {f"attn{i}": f"blocks.{i}.hook_attn_out", f"mlp{i}": f"blocks.{i}.hook_mlp_out"}
    return hooks


def head_direction(params: dict[str, torch.Tensor], normalization: str) -> np.ndarray:
    """h with reward = (h . x) / sigma(x) + const for the final residual x (see module doc)."""
    w_u = params["unembed.W_U"][:, 0].double().numpy()
    if normalization == "none":
        return w_u
    h = params["ln_final.w"].double().numpy() * w_u
    return h - h.mean()


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


@torch.no_grad()
def run_at_eos(bridge, tokens, eos, names: list[str], chunk: int = 1024):
    """(rewards [n], {hook name: [n, ...] activation at EOS}) from `run_with_cache`."""
    tokens, eos = torch.as_tensor(tokens).long(), torch.as_tensor(eos).long()
    rewards, acts = [], {name: [] for name in names}
    for part in _chunks(len(eos), chunk):
        t, e = tokens[part], eos[part]
        t = t[:, : int(e.max()) + 1]  # positions after the last EOS never matter (causal)
        logits, cache = bridge.run_with_cache(t, names_filter=lambda n: n in acts)
        rows = torch.arange(len(e))
        rewards.append(logits[rows, e, 0].double())
        for name in names:
            acts[name].append(cache[name][rows, e].double())
    return torch.cat(rewards).numpy(), {k: torch.cat(v).numpy() for k, v in acts.items()}


@torch.no_grad()
def rewards_at_eos(bridge, tokens, eos, chunk: int = 1024) -> np.ndarray:
    return run_at_eos(bridge, tokens, eos, [], chunk)[0]


@torch.no_grad()
def patch_eos(bridge, tokens, eos, hook: str, source: np.ndarray, chunk: int = 1024):
    """Rewards of `tokens` with the activation at `hook` at each EOS replaced by `source`
    ([n, d_model]); `run_with_hooks`."""
    tokens, eos = torch.as_tensor(tokens).long(), torch.as_tensor(eos).long()
    out = []
    for part in _chunks(len(eos), chunk):
        t, e = tokens[part], eos[part]
        t = t[:, : int(e.max()) + 1]
        rows = torch.arange(len(e))
        src = torch.as_tensor(source[part])

        def put(act, hook, rows=rows, e=e, src=src):
            act = act.clone()
            act[rows, e] = src.to(act.dtype)
            return act

        logits = bridge.run_with_hooks(t, fwd_hooks=[(hook, put)])
        out.append(logits[rows, e, 0].double())
    return torch.cat(out).numpy()


def _row(measure: str, value, component: str = "") -> dict:
    return {"measure": measure, "component": component, "value": float(value)}


def _behaviour_rows(reward: np.ndarray, sets: EvalSets, r_sd: float) -> list[dict]:
    """Within-group correlations of the reward, and accuracy on the length-balanced pairs."""
    g = sets.group
    p = sets.pairs
    correct = reward[p["chosen"]] > reward[p["rejected"]]
    acc_long = correct[p["chosen_longer"]].mean()
    acc_short = correct[~p["chosen_longer"]].mean()
    return [
        _row("wg_corr_reward_length", within_group_corr(reward, sets.length, g)),
        _row("wg_corr_reward_gold", within_group_corr(reward, sets.gold, g)),
        _row("wg_corr_gold_length", within_group_corr(sets.gold, sets.length, g)),  # gold alone
        _row("reward_sd_within", r_sd),
        _row("acc_chosen_longer", acc_long),
        _row("acc_chosen_shorter", acc_short),
        _row("acc_balanced", 0.5 * (acc_long + acc_short)),
        _row("acc_gap", acc_long - acc_short),
    ]


def _direction_rows(acts, layers, comps, h, sets: EvalSets, r_sd: float, cfg) -> list[dict]:
    """Head alignment of each layer's feature directions, then each component's direct
    attribution of length to the reward at EOS (and their sum)."""
    rows = []
    features = np.stack([sets.length, sets.gold_content], 1)
    for short, hook in layers.items():
        dirs = feature_directions(acts[hook], features, sets.group)
        rows.append(_row("head_align_length", cosine(dirs[0], h), short))
        rows.append(_row("head_align_gold", cosine(dirs[1], h), short))
    sigma = acts["ln_final.hook_scale"].reshape(-1) if cfg.normalization == "LN" else 1.0
    total = 0.0
    for short, hook in comps.items():
        contribution = acts[hook] @ h / sigma
        slope = within_group_slope(contribution, sets.length, sets.group) / r_sd
        total += slope
        rows.append(_row("attr_length", slope, short))
    rows.append(_row("attr_length", total, "total"))
    return rows


def _patching_rows(bridge, reward, layers, sets: EvalSets, r_sd: float) -> list[dict]:
    """Activation patching at EOS, base <- shifted, per layer: the effect and its share."""
    base = sets.shift_index
    b_tok, b_eos = sets.tokens[base], sets.eos[base]
    hooks = list(layers.values())[:-1]
    r_shift, shift_acts = run_at_eos(bridge, sets.shift_tokens, sets.shift_eos, hooks)
    full = float((r_shift - reward[base]).mean()) / r_sd
    rows = [_row("shift_effect", full)]
    for short, hook in list(layers.items())[:-1]:  # the last layer gives 1 by construction
        patched = patch_eos(bridge, b_tok, b_eos, hook, shift_acts[hook])
        effect = float((patched - reward[base]).mean()) / r_sd
        rows.append(_row("patch_effect", effect, short))
        rows.append(_row("patch_frac", effect / full if abs(full) > 1e-12 else float("nan"), short))
    return rows


def checkpoint_measures(bridge, params, cfg, sets: EvalSets, ridge: float) -> list[dict]:
    """Every measure of one checkpoint (module doc) as rows {measure, component, value}; probe
    values are raw here (relative-to-step-0 values are added by `relative_to_step0`)."""
    layers, comps = layer_hooks(cfg.n_layers), component_hooks(cfg.n_layers)
    names = list(dict.fromkeys([*layers.values(), *comps.values(), "ln_final.hook_scale"]))
    if cfg.normalization == "none":
        names.remove("ln_final.hook_scale")
    reward, acts = run_at_eos(bridge, sets.tokens, sets.eos, names)
    g = sets.group
    r_sd = float(np.sqrt((group_centre(reward, g) ** 2).mean())) + 1e-12
    h = head_direction(params, cfg.normalization)
    rows = _behaviour_rows(reward, sets, r_sd)
    rows += _direction_rows(acts, layers, comps, h, sets, r_sd, cfg)
    rows += _patching_rows(bridge, reward, layers, sets, r_sd)
    # probes, trained on the first half of the groups
    train = g < (int(g.max()) + 1) // 2
    for short, hook in layers.items():
        x = acts[hook]
        for target, y in (("length", sets.length), ("gold", sets.gold_content)):
            r2 = ridge_r2(x[train], y[train], x[~train], y[~train], ridge)
            rows.append(_row(f"probe_{target}", r2, short))
    return rows


def relative_to_step0(frame):
    """Add `<measure>_rel` = value minus the step-0 value, for the probe measures."""
    import pandas as pd

    probes = frame[frame.measure.isin(["probe_length", "probe_gold"])]
    first = probes[probes.step == probes.step.min()].set_index(["measure", "component"])["value"]
    rel = probes.copy()
    rel["value"] = (
        rel.value.to_numpy()
        - first.loc[list(zip(rel.measure, rel.component, strict=True))].to_numpy()
    )
    rel["measure"] = rel.measure + "_rel"
    return pd.concat([frame, rel], ignore_index=True)
