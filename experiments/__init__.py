"""The experiments: one package per folder, each holding its config, rules, science code,
figures, markers, paper section and tests. They import the shared library (alignlab); it never
imports them."""
