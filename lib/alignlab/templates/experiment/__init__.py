"""$title: scaffolded by `alignlab new-experiment $name` (replace with what it studies)."""
