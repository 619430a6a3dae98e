"""Length shortcut: reward models learn "longer is better" from biased pairs (Singhal et al.)."""
