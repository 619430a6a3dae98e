"""Reward-model overoptimization under best-of-n (Gao et al. 2022) and conservative ensembles."""
