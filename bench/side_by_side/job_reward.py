"""One job for bench/side_by_side/run.sh: prints its whole wall time (imports included)."""

import glob
import os
import shutil
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
import yaml  # noqa: E402 (timed: imports count)

from experiments.reward.train import run_experiment  # noqa: E402 (timed: imports count)

cfg = yaml.safe_load(Path("experiments/reward/config.yaml").read_text())["laptop"]
run = dict(cfg["defaults"], seed=20, data_seed=20, d_model=int(sys.argv[1]))
pairs = max(glob.glob("data/reward/pairs-*.safetensors"), key=os.path.getsize)
out = Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
out.mkdir(parents=True)
run_experiment(
    run,
    cfg["env"],
    cfg["analysis"],
    pairs,
    "data/reward/pool-f118d1ed.safetensors",
    out / "run",
    out / "log.parquet",
    out / "bon.parquet",
    out / "prov.json",
    threads=1,
)
print("WALL", time.perf_counter() - t0)
