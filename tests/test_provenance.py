"""Code versions: a rule reruns when the first-party code it runs changes, and only then."""

from alignlab.provenance import code_version, module_closure


def test_an_experiment_module_closes_over_its_experiment_and_library_imports():
    names = {path.as_posix() for path in module_closure("experiments.circuits.ablate")}
    assert any(name.endswith("experiments/circuits/measure.py") for name in names)
    assert any(name.endswith("experiments/circuits/spectra.py") for name in names)
    assert any(name.endswith("lib/alignlab/bridge.py") for name in names)  # a lazy import
    assert not any(name.endswith("experiments/circuits/figures.py") for name in names)


def test_figures_do_not_share_the_measures_code_version():
    measures = code_version("experiments.circuits.measure")
    assert measures == code_version("experiments.circuits.measure")
    assert measures != code_version("experiments.circuits.figures")
    assert len(measures) == 12
