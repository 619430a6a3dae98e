"""Where a scale's wall time goes, from the Snakemake log of its last complete run.

Every job's start, end, rule, wildcards, inputs and outputs are in the log Snakemake writes under
.snakemake/log/. From them: job time per experiment and rule, how busy the cores were, and the
critical path: the chain of jobs, each needing the previous one's output, with the largest total
time. The critical path bounds the wall time from below on any number of cores; the job time
divided by the cores the run had (Snakemake logs them) bounds it on this many.

Every job is a fresh Python process that imports its libraries before any work: the start floor
(this interpreter importing Snakemake's script preamble, torch and pandas, timed here) times the
number of jobs bounds what process starts cost, the share of the job time that more work per
job (fewer, larger jobs) could save at most.

.venv/bin/python bench/rule_times.py --scale laptop [--log .snakemake/log/<file>.log]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

LOG_DIR = Path(".snakemake/log")
EXPERIMENTS = sorted((p.name for p in Path("experiments").iterdir() if p.is_dir()), key=len)
_STAMP = re.compile(r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")
_FIELD = re.compile(r"\s+(input|output|jobid|wildcards): (.*)")


def find_log(scale: str, log_dir: Path = LOG_DIR) -> Path | None:
    """The newest log of a complete run of the whole DAG at `scale` (no `only=` subset) that ran
    at least half as many jobs as the largest such run: a rerun that rebuilt a few jobs (a
    figure, the numbers) is complete too, but says nothing of where the scale's time goes."""
    complete = []  # (path, jobs), newest first
    for path in sorted(log_dir.glob("*.snakemake.log"), reverse=True):
        text = path.read_text(errors="replace")
        found = re.search(r"Command: (.*)", text)
        command = found.group(1) if found else ""
        done = re.search(r"(\d+) of \1 steps \(100%\) done", text)
        if f"scale={scale}" in command and "only=" not in command and done:
            complete.append((path, int(done.group(1))))
    most = max((jobs for _, jobs in complete), default=0)
    return next((path for path, jobs in complete if 2 * jobs >= most), None)


def provided_cores(path: Path) -> int | None:
    """The cores Snakemake ran the DAG on, from its log ("Provided cores: N")."""
    found = re.search(r"Provided cores: (\d+)", Path(path).read_text(errors="replace"))
    return int(found.group(1)) if found else None


START_IMPORTS = "import snakemake.script, torch, pandas"  # what a training job loads first


def start_floor_s(repeats: int = 3) -> float:
    """Best wall time of a fresh interpreter that imports what a torch job imports, and exits."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", START_IMPORTS], check=True)
        best = min(best, time.perf_counter() - started)
    return best


def _experiment(rule: str, wildcards: dict) -> str:
    if "experiment" in wildcards:
        return wildcards["experiment"]
    matches = [name for name in EXPERIMENTS if rule.startswith(name + "_")]
    if matches:
        return matches[-1]  # the longest name that prefixes the rule
    return "paper" if rule.startswith("paper_") else "shared"


def parse_log(path: Path) -> pd.DataFrame:
    """One row per finished job: jobid, rule, experiment, wildcards, start/end (s), seconds,
    inputs, outputs."""
    stamp, origin, rule, jobs = None, None, None, {}
    for line in Path(path).read_text(errors="replace").splitlines():
        if found := _STAMP.search(line):
            stamp = dt.datetime.strptime(" ".join(found.group(1).split()), "%a %b %d %H:%M:%S %Y")
            origin = origin or stamp
        elif found := re.match(r"(?:local)?rule (\S+):", line):
            rule, job = found.group(1), {}
        elif (found := _FIELD.match(line)) and rule is not None:
            key, value = found.groups()
            job[key] = value
            if key == "jobid":
                job |= {"rule": rule, "start": (stamp - origin).total_seconds()}
                jobs[value] = job
        elif (found := re.match(r"Finished jobid: (\d+)", line)) and found.group(1) in jobs:
            jobs[found.group(1)]["end"] = (stamp - origin).total_seconds()
    return _table([job for job in jobs.values() if "end" in job and job["rule"] != "all"])


def _table(jobs: list[dict]) -> pd.DataFrame:
    rows = []
    for job in jobs:
        wildcards = dict(
            item.split("=", 1) for item in job.get("wildcards", "").split(", ") if "=" in item
        )
        rows.append(
            {
                "jobid": job["jobid"],
                "rule": job["rule"],
                "experiment": _experiment(job["rule"], wildcards),
                "wildcards": job.get("wildcards", ""),
                "start": job["start"],
                "end": job["end"],
                "seconds": job["end"] - job["start"],
                "inputs": [f for f in job.get("input", "").split(", ") if f],
                "outputs": [f for f in job.get("output", "").split(", ") if f],
            }
        )
    return pd.DataFrame(rows)


def critical_path(jobs: pd.DataFrame) -> list[int]:
    """Row indices of the longest chain by total seconds, each job using an output of the one
    before (dynamic programming over jobs in order of their end)."""
    producer = {f: i for i, outs in jobs.outputs.items() for f in outs}
    best: dict[int, tuple[float, int | None]] = {}
    for i in jobs.sort_values("end").index:
        parents = {producer[f] for f in jobs.at[i, "inputs"] if f in producer} - {i}
        prior = max(((best[p][0], p) for p in parents if p in best), default=(0.0, None))
        best[i] = (prior[0] + jobs.at[i, "seconds"], prior[1])
    node = max(best, key=lambda i: best[i][0]) if best else None
    path = []
    while node is not None:
        path.append(node)
        node = best[node][1]
    return path[::-1]


def summary(jobs: pd.DataFrame, cores: int) -> dict:
    wall = float(jobs.end.max())
    job_seconds = float(jobs.seconds.sum())
    path = critical_path(jobs)
    return {
        "wall_s": wall,
        "job_s": job_seconds,
        "cores": cores,
        "busy_share": job_seconds / (wall * cores),
        "critical_path_s": float(jobs.loc[path, "seconds"].sum()),
        "critical_path": path,
    }


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="laptop")
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--cores", type=int, default=None, help="default: from the log")
    args = parser.parse_args(argv)
    log = args.log or find_log(args.scale)
    if log is None:
        print(f"no complete run of the {args.scale} scale under {LOG_DIR}: run the DAG first")
        return pd.DataFrame()
    jobs = parse_log(log)
    s = summary(jobs, args.cores or provided_cores(log) or 1)
    print(f"where the {args.scale} scale's time goes ({log})")
    print(
        f"wall {s['wall_s']:.0f} s; job time {s['job_s']:.0f} s on {s['cores']} cores "
        f"({100 * s['busy_share']:.0f}% busy); critical path {s['critical_path_s']:.0f} s; "
        f"so no schedule beats {max(s['job_s'] / s['cores'], s['critical_path_s']):.0f} s on "
        f"these cores, nor {s['critical_path_s']:.0f} s on any number"
    )
    floor = start_floor_s()
    print(
        f"process starts: {len(jobs)} jobs x {floor:.1f} s (`{START_IMPORTS}` here, now) = at "
        f"most {len(jobs) * floor:.0f} s, {100 * len(jobs) * floor / s['job_s']:.0f}% of the "
        f"job time"
    )
    by_experiment = jobs.groupby("experiment").seconds.agg(["count", "sum"])
    by_experiment["share"] = (100 * by_experiment["sum"] / s["job_s"]).round(1)
    print(by_experiment.sort_values("sum", ascending=False).to_string())
    by_rule = jobs.groupby(["experiment", "rule"]).seconds.agg(["count", "sum", "max"])
    print(by_rule.sort_values("sum", ascending=False).head(15).to_string())
    print("critical path:")
    print(jobs.loc[s["critical_path"], ["rule", "wildcards", "start", "seconds"]].to_string())
    return jobs.drop(columns=["inputs", "outputs"])


if __name__ == "__main__":
    main()
