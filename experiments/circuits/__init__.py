"""Circuits: the grokked modular-addition algorithm read off its checkpoints (Nanda et al. 2023)."""
