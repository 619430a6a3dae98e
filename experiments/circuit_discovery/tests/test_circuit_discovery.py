"""The compiled zoo and the discovery methods, on answers known by construction."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from alignlab.config import ConfigError, load_experiment
from alignlab.testing import assert_close_fp
from experiments.circuit_discovery import methods, summary, training
from experiments.circuit_discovery.evaluate import checks
from experiments.circuit_discovery.graph import Graph, node_outputs
from experiments.circuit_discovery.programs import program
from experiments.circuit_discovery.rasp import Aggregate, Select, Tokens, run
from experiments.circuit_discovery.zoo import compiled, domain, random_params, to_bridge

TASKS = ["reverse", "proportion", "histogram", "previous_equal"]


@pytest.mark.parametrize(
    "task, tokens, expected",
    [
        ("reverse", (1, 2, 3, 3), [3, 3, 2, 1]),
        ("proportion", ("x", "w", "x", "y"), [1.0, 0.5, 2 / 3, 0.5]),
        ("histogram", ("a", "b", "a"), [2, 1, 2]),
        ("previous_equal", ("a", "a", "b", "b"), [None, 1, 0, 1]),
    ],
)
def test_programs_compute_their_tasks(task, tokens, expected):
    assert run(program(task).output, tokens) == pytest.approx(expected)


def test_a_categorical_aggregate_of_two_keys_is_an_error():
    tokens = Tokens("tokens", "categorical")
    both = Aggregate("x", "categorical", (tokens,), selector=Select(tokens, tokens, "TRUE"))
    with pytest.raises(ValueError, match="selected 2 keys"):
        run(both, ("a", "b"))


def test_an_unknown_predicate_is_refused():
    tokens = Tokens("tokens", "categorical")
    with pytest.raises(ValueError, match="predicate 'GT'"):
        Select(tokens, tokens, "GT")


@pytest.mark.parametrize("task", TASKS)
def test_compiled_models_compute_their_programs_and_their_circuit_is_exact(task):
    """Through the TransformerLens bridge, on every input of every length 1..5; at length 4
    each edge outside the circuit is inert and each edge inside changes a logit."""
    model = compiled(task)
    table = checks(model, Graph(model.cfg.n_layers), length=4).set_index("check").value
    assert table["exact_share"] == 1.0
    assert table["noncircuit_max_change"] <= 1e-6
    assert table["circuit_min_change"] >= 0.1
    assert 0 < table["n_circuit"] < table["n_edges"]


def test_reverse_has_tracrs_layout_and_ground_truth():
    model = compiled("reverse")
    assert model.placement == {
        "length.frac": "a0",
        "length": "m0",
        "opp_index": "m1",
        "opp_index-1": "m2",
        "reverse": "a3",
    }
    assert ("m2", "a3.q") in model.circuit and ("embed", "a3.k") in model.circuit
    # a TRUE selector's scores are constant: its head reads no query and no key
    assert not {("embed", "a0.q"), ("embed", "a0.k")} & model.circuit


def _setup(task="proportion", ablation="zero", params=None, dtype=torch.float32, seed=0):
    model = compiled(task)
    if dtype == torch.float64:
        params = {k: v.double() for k, v in (params or model.params).items()}
    bridge = to_bridge(model, params)
    graph = Graph(model.cfg.n_layers)
    tokens = model.token_ids(domain(model, 4))
    return model, methods.setup(bridge, graph, tokens, model.numerical, ablation, seed)


def test_the_patched_forward_without_ablation_is_the_bridge_and_nodes_sum_to_the_stream():
    model, s = _setup("reverse")
    with torch.no_grad():
        assert torch.equal(s.forward(), s.clean_logits)
        _, cache = s.bridge.run_with_cache(s.tokens)
    assert_close_fp(sum(s.clean.values()), cache["unembed.hook_in"], n=len(s.clean))


def test_ablating_edges_into_the_output_is_linear_in_the_ablated_node():
    """logits = (resid) W_U with no LayerNorm: ablating (u, out) moves them by (c_u - u) W_U."""
    params = random_params(compiled("previous_equal"), 3)
    model, s = _setup("previous_equal", "resample", params)
    W_U = params["unembed.W_U"]
    with torch.no_grad():
        got = s.forward([("m0", "out")])
    expected = s.clean_logits + (s.corrupted["m0"] - s.clean["m0"]) @ W_U
    assert_close_fp(got, expected, n=W_U.shape[0])


def test_eap_is_exhaustive_patching_to_first_order():
    """With the corruption scaled by eps, EAP's per-input estimate of each edge's change of the
    metric differs from the patched change by O(eps^2) (float64)."""
    model, s = _setup(
        "proportion", params=random_params(compiled("proportion"), 1), dtype=torch.float64
    )
    generator = torch.Generator().manual_seed(0)
    eps = 1e-6  # small enough that no ReLU of this model changes side (a kink breaks first order)
    s.corrupted = {
        k: v + eps * torch.randn(v.shape, generator=generator, dtype=v.dtype)
        for k, v in s.clean.items()
    }
    estimate = methods.attributions(s, methods.eap_gradients(s))
    base = methods.answer_metric(s.clean_logits, s.clean_logits, s.numerical)
    for edge, attribution in estimate.items():
        with torch.no_grad():
            patched = methods.answer_metric(s.forward([edge]), s.clean_logits, s.numerical)
        change = patched - base
        assert (attribution - change).abs().max() <= 1e-4 * change.abs().max() + 1e-15, edge


def test_eap_ig_edges_out_of_the_embedding_add_up_to_the_whole_change():
    """Completeness: the gradient at the embedding is the sum of the gradients at the inputs that
    read it, so the embedding's attributions sum to metric(corrupted embedding) - metric(clean),
    up to the Riemann sum's O(1 / steps)."""
    model, s = _setup("reverse", "mean", random_params(compiled("reverse"), 2), dtype=torch.float64)
    grads = methods.ig_gradients(s, steps=400)
    total = sum(a for (u, _), a in methods.attributions(s, grads).items() if u == "embed")
    with torch.no_grad():
        end = s.forward(embed=s.corrupted["embed"])
    change = methods.answer_metric(end, s.clean_logits, s.numerical) - methods.answer_metric(
        s.clean_logits, s.clean_logits, s.numerical
    )
    assert change.abs().max() > 0.1
    assert (total - change).abs().max() <= 0.01 * change.abs().max()


@pytest.mark.parametrize("task", ["reverse", "proportion"])
def test_acdc_at_a_small_threshold_finds_exactly_the_compiled_circuit(task):
    model, s = _setup(task)
    assert methods.acdc(s, threshold=1e-6) == model.circuit
    assert methods.acdc(s, threshold=1e9) == set()


def test_exhaustive_patching_scores_zero_exactly_outside_the_circuit():
    model, s = _setup("histogram")
    scores = methods.patching_scores(s)
    assert all(scores[e] == 0 for e in scores if e not in model.circuit)
    assert min(scores[e] for e in model.circuit) > 1e-3
    assert methods.auc(scores, model.circuit) == 1.0


def test_auc_and_roc_have_their_known_values():
    truth = {("a", "x"), ("b", "x")}
    edges = [("a", "x"), ("b", "x"), ("c", "x"), ("d", "x")]
    perfect = dict(zip(edges, [4.0, 3.0, 2.0, 1.0], strict=True))
    reversed_ = dict(zip(edges, [1.0, 2.0, 3.0, 4.0], strict=True))
    tied = dict.fromkeys(edges, 1.0)
    assert methods.auc(perfect, truth) == 1.0
    assert methods.auc(reversed_, truth) == 0.0
    assert methods.auc(tied, truth) == 0.5
    rng = np.random.default_rng(0)
    for _ in range(5):
        scores = dict(zip(edges, rng.integers(0, 3, 4).astype(float), strict=True))
        assert methods.trapezoid_auc(methods.score_roc(scores, truth)) == pytest.approx(
            methods.auc(scores, truth)
        )
    assert methods.roc_point({("a", "x"), ("c", "x")}, edges, truth) == (0.5, 0.5)


def test_the_staircase_auc_is_acdcs_pessimistic_auc():
    """The values Conmy et al.'s code asserts for its `pessimistic_auc`."""
    cases = [
        ([0, 0.5, 1], [0, 0.5, 1], 0.25),
        ([0, 0.25, 1], [0, 0.25, 1], 0.25 * 0.75),
        ([0, 0.25, 0.5, 1], [0, 0.25, 0.5, 1], 5 / 16),
        ([0, 0.25, 0.75, 1], [0, 0.25, 0.5, 1], 4 / 16),
    ]
    for fpr, tpr, expected in cases:
        assert methods.staircase_auc(list(zip(fpr, tpr, strict=True))) == pytest.approx(expected)
    # a later point below an earlier one adds nothing
    assert methods.staircase_auc([(0.0, 0.5), (0.5, 0.25)]) == pytest.approx(0.5)
    assert methods.staircase_auc([(0.0, 1.0)]) == 1.0


def test_scores_below_the_float32_resolution_of_the_largest_are_not_found():
    scores = {("a", "x"): 1.0, ("b", "x"): 3e-7, ("c", "x"): 2e-6}
    assert methods.floored(scores) == {("a", "x"): 1.0, ("b", "x"): 0.0, ("c", "x"): 2e-6}


def test_a_derangement_moves_every_input():
    perm = methods.derangement(50, seed=3)
    assert sorted(perm.tolist()) == list(range(50))
    assert not (perm == torch.arange(50)).any()


def test_an_unknown_ablation_is_refused_before_any_work():
    with pytest.raises(ValueError, match="ablation 'random'"):
        methods.setup(None, Graph(1), None, False, "random", 0)


def test_the_edge_graph_needs_one_head_per_layer():
    model = compiled("histogram")
    bridge = to_bridge(model)
    with pytest.raises(ValueError, match="one head per layer and 2 layers"):
        node_outputs(bridge, Graph(2), model.token_ids(domain(model, 2)))


class _FakeNodes:
    """Nodes 0..9 with known scores; the loss falls by node i's weight when it is kept."""

    n_neurons, n_heads = 8, 2

    def __init__(self):
        self.weights = torch.tensor([5.0, 3.0, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.0, 0.0, 0.0])

    def scores(self, steps):
        return self.weights.clone()

    def loss(self, keep):
        return float(10.0 - self.weights[keep].sum())


def test_the_circuit_is_the_smallest_top_set_reaching_the_faithfulness():
    result = training.circuit_at(_FakeNodes(), faithfulness=0.9, steps=1)
    # gap 9.9375; top 2 recover 8 / 9.9375 = 0.805, top 3 recover 9 / 9.9375 = 0.906
    assert result["n_nodes"] == 3 and result["nodes"] == [0, 1, 2]
    assert result["faithfulness"] == pytest.approx(9 / 9.9375)


def test_overlap_and_the_step_discovery_sees_the_circuit():
    assert training.overlap({1, 2, 3}, {2, 3, 4, 5}) == {
        "precision": 2 / 3,
        "recall": 0.5,
        "jaccard": 2 / 5,
    }
    rows = pd.DataFrame(
        {
            "run_id": "r",
            "step": [0, 10, 20, 30, 40, 50],
            "precision": [math.nan, 0.5, 0.9, 0.7, 0.85, 0.9],
            "n_nodes": [math.nan, 9, 8, 7, 6, 5],
            "n_fourier": 50,
            "d_mlp": 100,  # chance precision 0.5: lifts n/a, 0, 0.8, 0.4, 0.7, 0.8
        }
    )
    assert summary.precision_lift(rows).tolist()[1:] == pytest.approx([0, 0.8, 0.4, 0.7, 0.8])
    assert summary.sees_step(rows, 0.6) == {"r": 40.0}
    assert math.isnan(summary.sees_step(rows.assign(precision=0.55), 0.6)["r"])
    assert summary.gate_step(rows) == {"r": 10.0}


def test_a_bad_config_value_is_named_before_any_work(tmp_path):
    source = load_experiment.__globals__["Path"]("experiments/circuit_discovery")
    text = (source / "config.yaml").read_text().replace("length: 4", "length: 9")
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "config.schema.yaml").write_text((source / "config.schema.yaml").read_text())
    with pytest.raises(ConfigError, match="length"):
        load_experiment(tmp_path, "laptop")


def test_the_fourier_neurons_are_the_single_frequency_ones_at_a_key_frequency():
    rows = []
    for neuron, (freq, explained) in enumerate([(5, 0.9), (5, 0.5), (7, 0.95), (9, 0.99)]):
        for step, scale in ((0, 0.0), (100, 1.0)):  # only the final step counts
            rows += [
                {
                    "run_id": "r",
                    "step": step,
                    "measure": "neuron_freq",
                    "component": str(neuron),
                    "value": freq,
                },
                {
                    "run_id": "r",
                    "step": step,
                    "measure": "neuron_explained",
                    "component": str(neuron),
                    "value": explained * scale,
                },
            ]
    table = pd.DataFrame(rows)
    assert training.fourier_neurons(table, "r", [5, 9], 0.85) == {0, 3}
    with pytest.raises(ValueError, match="no final neuron measures of run 'other'"):
        training.fourier_neurons(table, "other", [5], 0.85)


def test_edge_attributions_add_up_to_transformerlens_attribution_patching():
    """TransformerLens 4.x's `attribution_patch` scores nodes (its edge granularity needs split
    per-head inputs, which the native bridge lacks): per node and position, (a_clean - a_corrupt) .
    the gradient on the corrupt run. Our edges out of a node, summed, are the same number with the
    roles named the other way (our clean run is its corrupt one), summed over positions."""
    from transformer_lens.tools.analysis.attribution_patching import (
        EdgeAttributionConfig,
        attribution_patch,
    )

    params = random_params(compiled("proportion"), 1)
    model, s = _setup("proportion", "resample", params, dtype=torch.float64)
    perm = methods.derangement(len(s.tokens), 0)  # setup's pairing for seed 0
    result = attribution_patch(
        s.bridge,
        s.tokens[perm],
        s.tokens,
        lambda logits: logits[0, 1:, 0].sum(),  # the numerical answer metric of one input
        EdgeAttributionConfig("node"),
    )
    theirs: dict[str, float] = {}
    for node, score in result.node_scores.items():
        name = (
            "embed"
            if node.kind == "embed"
            else f"{'a' if node.kind.startswith('attn') else 'm'}{node.layer}"
        )
        theirs[name] = theirs.get(name, 0.0) + score
    ours: dict[str, float] = {}
    for (u, _), attribution in methods.attributions(s, methods.eap_gradients(s)).items():
        ours[u] = ours.get(u, 0.0) + float(attribution.mean())
    assert set(ours) == set(theirs)
    scale = max(abs(v) for v in theirs.values())
    assert scale > 1e-3
    for node, value in ours.items():
        assert value == pytest.approx(theirs[node], abs=1e-9 * scale), node


def test_the_node_model_on_a_grokking_bridge():
    """On a real (small, float64) modular-addition bridge: with every node kept the loss is the
    model's training loss; with none kept it is the loss with every node at its mean; the node
    gradients are the derivatives of the summed log-probability (central differences)."""
    from alignlab.bridge import final_loss, to_bridge
    from alignlab.models import ModelConfig, init_params

    cfg = ModelConfig(p=7, d_model=16, n_heads=2, d_head=8, d_mlp=12)
    params = {k: v.double() for k, v in init_params(cfg, 0).items()}
    bridge = to_bridge(params, cfg)
    a, b = training.pairs(7, 49, seed=0)
    model = training.NodeModel(bridge, a, b)
    n = model.n_neurons + model.n_heads
    with torch.no_grad():
        expected = float(final_loss(bridge, a, b, (a + b) % 7))
    assert model.loss(torch.ones(n, dtype=torch.bool)) == pytest.approx(expected, rel=1e-12)
    assert model.loss(torch.zeros(n, dtype=torch.bool)) != pytest.approx(expected, rel=1e-3)
    grads = model._gradients(model.embed)
    eps, row = 1e-6, 5
    neuron = int(grads[training.POST][row].abs().argmax())  # a live one; checked independently

    def summed_log_prob(shift: float) -> float:
        def nudge(x, hook):
            x = x.clone()
            x[row, -1, neuron] += shift
            return x

        with torch.no_grad():
            logits = bridge.run_with_hooks(model.tokens, fwd_hooks=[(training.POST, nudge)])[:, -1]
        return float(logits.log_softmax(-1).gather(1, model.labels[:, None]).sum())

    numeric = (summed_log_prob(eps) - summed_log_prob(-eps)) / (2 * eps)
    assert abs(numeric) > 1e-4  # a live neuron: the comparison below is not 0 == 0
    assert float(grads[training.POST][row, neuron]) == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    scores = model.scores(steps=2)
    assert scores.shape == (n,) and torch.isfinite(scores).all() and (scores >= 0).all()
