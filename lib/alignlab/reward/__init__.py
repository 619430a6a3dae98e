"""Reward-model overoptimization (Gao et al. 2022) on a fully synthetic environment.

- `env`: the base sampler (prompt, SEP, Markov-chain completion, EOS), the gold reward and
  preference pairs labelled by gold;
- `model`: a small transformer reward model with a scalar head read at the EOS token;
- `train`: Bradley-Terry training (TRL's loss and metrics) and recentring on the base sampler;
- `bon`: best-of-n over a pool with the unbiased estimator, KL_bon, the d(alpha - beta d) fit with
  a bootstrap over prompts and seeds, and the overoptimization summary per sweep cell.
"""
