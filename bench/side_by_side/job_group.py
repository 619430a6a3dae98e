"""One job for bench/side_by_side/run.sh: one laptop group of reward runs that differ only in
their seeds (`ensemble`: the first ensemble's 4 members; `dm4` / `dm32`: the RM-size sweep's 3
seeds at that d_model), trained `alone` (one fresh process per run, as a job per run did) or
`stacked` (one process, `run_group`, as a reward_train_group job does); prints the whole wall
time. The pairs and pool of a laptop run must be in data/reward/."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
import yaml  # noqa: E402 (timed: imports count)

from experiments.reward.runs import data_id, expand_ensemble, expand_runs  # noqa: E402
from experiments.reward.train import pairs_spec  # noqa: E402

cfg = yaml.safe_load(Path("experiments/reward/config.yaml").read_text())["laptop"]
(runs, cells), (members, ensembles) = expand_runs(cfg), expand_ensemble(cfg)
group, mode, out = sys.argv[1], sys.argv[2], Path(sys.argv[-1])
if group == "ensemble":
    group_runs = [members[rid] for rid in ensembles[20]]
else:
    group_runs = [runs[rid] for rid in cells[f"rm_size:{int(group.removeprefix('dm'))}"]]
largest = {}  # as rules.smk names the pairs files: one per spec, as large as its largest run
for run in [*runs.values(), *members.values()]:
    key = data_id(pairs_spec(run, cfg["env"]))
    largest[key] = max(largest.get(key, 0), run["n_pairs"])
pairs = []
for run in group_runs:
    spec = pairs_spec(run, cfg["env"])
    pairs.append(
        f"data/reward/pairs-{data_id({**spec, 'n_pairs': largest[data_id(spec)]})}.safetensors"
    )
pool = "data/reward/pool-f118d1ed.safetensors"
names = ("log.parquet", "bon.parquet", "prov.json", "scores.safetensors")
if mode == "run":  # one run in this process (called by `alone`)
    from experiments.reward.train import run_experiment

    k = int(sys.argv[3])
    files = [out / f"{k}.{name}" for name in names]
    run_experiment(group_runs[k], cfg["env"], cfg["analysis"], pairs[k], pool, out / f"run{k}",
                   *files[:3], threads=1, out_scores=files[3])  # fmt: skip
    sys.exit()
shutil.rmtree(out, ignore_errors=True)
out.mkdir(parents=True)
if mode == "alone":
    for k in range(len(group_runs)):
        subprocess.run([sys.executable, __file__, group, "run", str(k), str(out)], check=True)
else:
    from experiments.reward.train import RunFiles, run_group

    files = RunFiles.each(*([out / f"{k}.{n}" for k in range(len(group_runs))] for n in names))
    dirs = [out / f"run{k}" for k in range(len(group_runs))]
    run_group(group_runs, cfg["env"], cfg["analysis"], pairs, pool, out / "group", dirs, files)
print("WALL", time.perf_counter() - t0)
