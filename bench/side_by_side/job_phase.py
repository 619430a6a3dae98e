"""One job for bench/side_by_side/run.sh: prints its whole wall time (imports included)."""

import glob
import json
import shutil
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
from alignlab.modular import dataset_path, train_run  # noqa: E402 (timed: imports count)

d = glob.glob("results/scaling/laptop/runs/phase-lr0.01-seed0-wd7.0*")[0]
run = json.loads(Path(d, "provenance.json").read_text())["config"]
run["steps"] = int(sys.argv[1])
run["early_stop_patience"] = None
out = Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
train_run(run, dataset_path(run), out, threads=1)
print("WALL", time.perf_counter() - t0)
