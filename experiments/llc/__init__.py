"""The local learning coefficient over training (Lau et al.; devinterp)."""
