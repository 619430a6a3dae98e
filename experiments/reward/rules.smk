# RLHF reward-model overoptimization (Gao et al. 2022): pool + pairs -> proxy RMs (train, score
# the pool, best-of-n) -> collect -> per-cell summary and fits -> figures, numbers, markers.
# Conservative ensembles (Coste et al. 2023): members trained on noisy labels keep their pool
# scores; reward_ensemble combines them (no retraining).
from alignlab.config import load_experiment
from experiments.reward.runs import data_id, expand_ensemble, expand_runs, train_groups
from experiments.reward.train import pairs_spec

RW = load_experiment(ROOT / "experiments/reward", SCALE)
RW_RUNS, RW_CELLS = expand_runs(RW)
RW_IDS = sorted(RW_RUNS)
RW_MEMBERS, RW_ENSEMBLES = expand_ensemble(RW)  # {run_id: run}, {data_seed: [run_id]}
RW_MEMBER_IDS = sorted(RW_MEMBERS)
RW_POOL_ID = data_id({"env": RW["env"], "pool": RW["pool"]})
# one pairs file per (environment, data seed, labelling, size): each holds as many pairs as its
# largest run needs, and smaller runs take prefixes (nested data sizes). The size is part of the
# id, so another scale's smaller file never replaces it.
_RW_MAX = {}
for _run in [*RW_RUNS.values(), *RW_MEMBERS.values()]:
    _key = data_id(pairs_spec(_run, RW["env"]))
    _RW_MAX[_key] = max(_run["n_pairs"], _RW_MAX.get(_key, 0))
RW_PAIRS = {}  # pairs id -> (spec, n_pairs)
RW_RUN_PAIRS = {}  # run id -> pairs id
for _rid, _run in [*RW_RUNS.items(), *RW_MEMBERS.items()]:
    _spec = pairs_spec(_run, RW["env"])
    _n = _RW_MAX[data_id(_spec)]
    _pid = data_id({**_spec, "n_pairs": _n})
    RW_PAIRS[_pid] = (_spec, _n)
    RW_RUN_PAIRS[_rid] = _pid
RW_OUT = f"results/reward/{SCALE}"
RW_FIGS = "paper/figures/reward"
RW_FIGURES = ["rm_size", "data_size", "alpha_beta", "ensemble"]

TARGETS["reward"] = expand(f"{RW_FIGS}/{{fig}}.{{ext}}", fig=RW_FIGURES, ext=["pdf", "png"]) + [
    f"{RW_OUT}/numbers.json",
    "paper/generated/reward_fits.tex",
    "paper/generated/reward_ensemble.tex",
]
# every trained run: the sweeps' and the oracle (runs/) and the ensemble members (ensemble/)
RW_RUN_DIRS = {rid: f"{RW_OUT}/runs/{rid}" for rid in RW_IDS} | {
    rid: f"{RW_OUT}/ensemble/{rid}" for rid in RW_MEMBER_IDS
}
RW_ALL_IDS = sorted(RW_RUN_DIRS)


rule reward_pool:
    output:
        f"data/reward/pool-{RW_POOL_ID}.safetensors",
    log:
        f"{RW_OUT}/logs/pool.log",
    resources:
        mem_mb=2000,
    params:
        env=RW["env"],
        pool=RW["pool"],
        code=code("experiments.reward.train"),
    script:
        "scripts/pool.py"


rule reward_pairs:
    output:
        "data/reward/pairs-{pairs_id}.safetensors",
    log:
        f"{RW_OUT}/logs/pairs/{{pairs_id}}.log",
    params:
        spec=lambda wc: RW_PAIRS[wc.pairs_id][0],
        n_pairs=lambda wc: RW_PAIRS[wc.pairs_id][1],
        code=code("experiments.reward.train"),
    script:
        "scripts/pairs.py"


rule reward_oracle:
    """The oracle control: proxy = gold (nothing to train), best-of-n on the pool."""
    input:
        pool=f"data/reward/pool-{RW_POOL_ID}.safetensors",
    output:
        log=f"{RW_OUT}/runs/{{run_id}}/train_log.parquet",
        bon=f"{RW_OUT}/runs/{{run_id}}/bon.parquet",
        provenance=f"{RW_OUT}/runs/{{run_id}}/provenance.json",
    log:
        f"{RW_OUT}/logs/oracle/{{run_id}}.log",
    wildcard_constraints:
        run_id="oracle-[0-9a-f]+",
    resources:
        mem_mb=3000,
    params:
        run=lambda wc: RW_RUNS[wc.run_id],
        env=RW["env"],
        analysis=RW["analysis"],
        run_dir=lambda wc: f"{RW_OUT}/runs/{wc.run_id}",
        code=code("experiments.reward.train"),
    script:
        "scripts/oracle.py"


# Every RM trains in a group of runs that differ only in their seeds: a sweep cell's seeds (each
# on its own pairs) or an ensemble's members (on their shared noisy pairs). A group is one job
# whose runs train stacked (alignlab.preference.stacked: each run's step is the step it takes
# alone; a job instead of one per run saves K - 1 process starts, and the stacked step is
# 1.1-1.3x faster on a CPU, bench/reward_time.py), then each run scores the pool and writes its
# own files; the members also keep their pool scores for reward_ensemble. One rule per group, as
# its outputs are its runs' files, which a wildcard cannot express.
RW_GROUPS = train_groups(RW_RUNS, vary=("seed", "data_seed")) | train_groups(
    RW_MEMBERS, vary=("seed",)
)
RW_TRAINED = RW_RUNS | RW_MEMBERS  # run id -> run, for every run a group trains
for _i, (_gid, _ids) in enumerate(sorted(RW_GROUPS.items())):
    _dirs = [RW_RUN_DIRS[rid] for rid in _ids]

    rule:
        name:
            f"reward_train_group_{_i}"
        input:
            pool=f"data/reward/pool-{RW_POOL_ID}.safetensors",
            pairs=[f"data/reward/pairs-{RW_RUN_PAIRS[rid]}.safetensors" for rid in _ids],
        output:
            # each run's checkpoints live beside these, not declared (see modular_train)
            logs=[f"{d}/train_log.parquet" for d in _dirs],
            bon=[f"{d}/bon.parquet" for d in _dirs],
            provenance=[f"{d}/provenance.json" for d in _dirs],
            scores=[f"{RW_RUN_DIRS[r]}/scores.safetensors" for r in _ids if r in RW_MEMBERS],
        log:
            f"{RW_OUT}/logs/train_group/{_gid}.log",
        benchmark:
            f"{RW_OUT}/benchmarks/train_group/{_gid}.tsv"
        resources:
            mem_mb=3000,
            runtime=lambda wc: 240 if SCALE == "paper" else 20,
            gpu=lambda wc: 1 if SCALE == "paper" else 0,
        params:
            runs=[RW_TRAINED[rid] for rid in _ids],
            env=RW["env"],
            analysis=RW["analysis"],
            run_dirs=_dirs,
            # the group trains here (stacked checkpoints, resume state), then splits per run
            group_dir=f"{RW_OUT}/groups/{_gid}",
            code=code("experiments.reward.train"),
        script:
            "scripts/train_group.py"


rule reward_ensemble:
    input:
        pool=f"data/reward/pool-{RW_POOL_ID}.safetensors",
        scores=expand(f"{RW_OUT}/ensemble/{{run_id}}/scores.safetensors", run_id=RW_MEMBER_IDS),
    output:
        curves=f"{RW_OUT}/ensemble_curves.parquet",
        fits=f"{RW_OUT}/ensemble_fits.parquet",
    log:
        f"{RW_OUT}/logs/ensemble.log",
    benchmark:
        f"{RW_OUT}/benchmarks/ensemble.tsv"
    resources:
        mem_mb=2000,
    params:
        member_ids=RW_MEMBER_IDS,
        ensembles=RW_ENSEMBLES,
        spec=RW["ensemble"],
        analysis=RW["analysis"],
        code=code("experiments.reward.summary"),
    script:
        "scripts/ensemble.py"


rule reward_collect:
    input:
        bon=[f"{RW_RUN_DIRS[rid]}/bon.parquet" for rid in RW_ALL_IDS],
        logs=[f"{RW_RUN_DIRS[rid]}/train_log.parquet" for rid in RW_ALL_IDS],
    output:
        bon=f"{RW_OUT}/bon.parquet",
        logs=f"{RW_OUT}/train_logs.parquet",
        runs=f"{RW_OUT}/runs.parquet",
    log:
        f"{RW_OUT}/logs/collect.log",
    resources:
        mem_mb=2000,
    params:
        run_ids=RW_ALL_IDS,
        runs=RW_RUNS | RW_MEMBERS,
        cells=RW_CELLS | {f"ensemble:{ds}": rids for ds, rids in RW_ENSEMBLES.items()},
        code=code("experiments.reward.runs"),
    script:
        "scripts/collect.py"


rule reward_summary:
    input:
        bon=f"{RW_OUT}/bon.parquet",
        runs=f"{RW_OUT}/runs.parquet",
        ensemble=f"{RW_OUT}/ensemble_fits.parquet",
    output:
        fits=f"{RW_OUT}/fits.parquet",
        curves=f"{RW_OUT}/curves.parquet",
        markers=f"{RW_OUT}/markers.parquet",
    log:
        f"{RW_OUT}/logs/summary.log",
    benchmark:
        f"{RW_OUT}/benchmarks/summary.tsv"
    resources:
        mem_mb=2000,
    params:
        cells=RW_CELLS,
        member_ids=RW_MEMBER_IDS,
        analysis=RW["analysis"],
        code=code("experiments.reward.summary"),
    script:
        "scripts/summary.py"


rule reward_figures:
    input:
        curves=f"{RW_OUT}/curves.parquet",
        fits=f"{RW_OUT}/fits.parquet",
        ensemble=f"{RW_OUT}/ensemble_curves.parquet",
    output:
        # PNGs go into the HTML report (snakemake --report), one caption each, under "reward".
        [
            (
                report(f"{RW_FIGS}/{fig}.png", category="reward", caption=f"report/{fig}.rst")
                if ext == "png"
                else f"{RW_FIGS}/{fig}.{ext}"
            )
            for fig in RW_FIGURES
            for ext in ("pdf", "png")
        ],
    log:
        f"{RW_OUT}/logs/figures.log",
    resources:
        mem_mb=2000,
    params:
        out_dir=RW_FIGS,
        code=code("experiments.reward.figures"),
    script:
        "scripts/figures.py"


rule reward_numbers:
    input:
        pool=f"data/reward/pool-{RW_POOL_ID}.safetensors",
        fits=f"{RW_OUT}/fits.parquet",
        runs=f"{RW_OUT}/runs.parquet",
        ensemble=f"{RW_OUT}/ensemble_fits.parquet",
    output:
        numbers=f"{RW_OUT}/numbers.json",
        table="paper/generated/reward_fits.tex",
        ensemble_table="paper/generated/reward_ensemble.tex",
    log:
        f"{RW_OUT}/logs/numbers.log",
    params:
        block=RW,
        code=code("experiments.reward.numbers"),
    script:
        "scripts/numbers.py"


# The explorer's views: each RM's gold and proxy against d among its sweep's.
EXPLORE["reward"] = f"{RW_OUT}/explorer.json"


rule reward_explore:
    input:
        curves=f"{RW_OUT}/curves.parquet",
    output:
        EXPLORE["reward"],
    log:
        f"{RW_OUT}/logs/explore.log",
    params:
        code=code("experiments.reward.explore"),
    script:
        "scripts/explore.py"
