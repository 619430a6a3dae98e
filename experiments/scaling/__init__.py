"""Scaling and phase diagrams of grokking (Power et al. 2022; Liu et al. 2022)."""
