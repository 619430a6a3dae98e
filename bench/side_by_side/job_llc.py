"""One job for bench/side_by_side/run.sh: prints its whole wall time (imports included)."""

import glob
import shutil
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
import yaml  # noqa: E402 (timed: imports count)

from experiments.llc.mlp import train_mlp  # noqa: E402 (timed: imports count)

cfg = yaml.safe_load(Path("experiments/llc/config.yaml").read_text())["laptop"]["mlp"]["defaults"]
run = dict(cfg, seed=0, steps=int(sys.argv[1]), lr=float(sys.argv[2]))
out = Path(sys.argv[3])
shutil.rmtree(out, ignore_errors=True)
train_mlp(run, glob.glob("data/llc/add-p53-frac0.4-seed0.parquet")[0], out, threads=1)
print("WALL", time.perf_counter() - t0)
