"""Figures: one house style (`style`), one module per experiment, built from tidy tables only."""
