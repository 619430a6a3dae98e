"""Reward models learned from preference pairs on a fully synthetic environment, shared by the
experiments that train them (reward, length_shortcut).

- `env`: the base sampler (prompt, SEP, Markov-chain completion, EOS), the gold reward and
  preference pairs labelled by gold (optionally length-biased);
- `model`: a small transformer reward model with a scalar head read at the EOS token;
- `train`: Bradley-Terry training with TRL's loss and metrics, checkpointed at log-spaced steps;
- `stacked`: runs that differ only in their seeds trained together as one stacked model, each
  run's step the step it takes alone.
"""
