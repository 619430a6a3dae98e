"""Backdoor: scaffolded by `alignlab new-experiment backdoor` (replace with what it studies)."""
