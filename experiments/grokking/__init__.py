"""Grokking: the progress measures and phases of Nanda et al. 2023 on modular addition."""
