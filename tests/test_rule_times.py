"""bench/rule_times.py on a Snakemake log with a known schedule: job times, critical path."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOG = """\
Command: .venv/bin/snakemake --config scale=laptop
Provided cores: 16
[Tue Dec  1 10:00:00 2026]
localrule modular_dataset:
    output: data/modular/d.parquet
    jobid: 3
    wildcards: dataset=d
[Tue Dec  1 10:00:02 2026]
Finished jobid: 3 (Rule: modular_dataset)
[Tue Dec  1 10:00:02 2026]
localrule modular_train:
    input: data/modular/d.parquet
    output: results/grokking/laptop/runs/a/train_log.parquet
    jobid: 2
    wildcards: experiment=grokking, run_id=a
[Tue Dec  1 10:00:02 2026]
localrule reward_train:
    output: results/reward/laptop/runs/b/scores.parquet
    jobid: 4
    wildcards: run_id=b
[Tue Dec  1 10:00:40 2026]
Finished jobid: 4 (Rule: reward_train)
[Tue Dec  1 10:01:02 2026]
Finished jobid: 2 (Rule: modular_train)
[Tue Dec  1 10:01:02 2026]
localrule grokking_measures:
    input: results/grokking/laptop/runs/a/train_log.parquet, data/modular/d.parquet
    output: results/grokking/laptop/runs/a/measures.parquet
    jobid: 1
    wildcards: run_id=a
[Tue Dec  1 10:01:12 2026]
Finished jobid: 1 (Rule: grokking_measures)
[Tue Dec  1 10:01:12 2026]
localrule all:
    input: results/grokking/laptop/runs/a/measures.parquet
    jobid: 0
[Tue Dec  1 10:01:12 2026]
Finished jobid: 0 (Rule: all)
4 of 4 steps (100%) done
"""


def _module():
    spec = importlib.util.spec_from_file_location("rule_times", REPO / "bench" / "rule_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jobs_experiments_busy_share_and_critical_path(tmp_path):
    rule_times = _module()
    log = tmp_path / "2026-12-01T100000.000000.snakemake.log"
    log.write_text(LOG)
    assert (
        rule_times.find_log("laptop", tmp_path) == log
        and rule_times.find_log("paper", tmp_path) is None
    )
    assert rule_times.provided_cores(log) == 16  # the profile is for the cores the run had
    jobs = rule_times.parse_log(log).set_index("jobid")
    assert jobs.seconds.to_dict() == {"3": 2.0, "2": 60.0, "4": 38.0, "1": 10.0}
    assert jobs.experiment.to_dict() == {
        "3": "shared",
        "2": "grokking",
        "4": "reward",
        "1": "grokking",
    }
    s = rule_times.summary(jobs.reset_index(), cores=2)
    assert s["wall_s"] == 72.0 and s["job_s"] == 110.0 and s["busy_share"] == 110.0 / 144.0
    # dataset -> train -> measures (72 s); the reward job is beside it, not on it
    assert s["critical_path_s"] == 72.0
    path_rules = jobs.reset_index().loc[s["critical_path"], "rule"].tolist()
    assert path_rules == ["modular_dataset", "modular_train", "grokking_measures"]


def test_a_rerun_of_a_few_jobs_is_not_taken_for_the_scale(tmp_path):
    rule_times = _module()
    whole = tmp_path / "2026-12-01T100000.000000.snakemake.log"
    whole.write_text(LOG)
    rerun = tmp_path / "2026-12-01T120000.000000.snakemake.log"  # newer: rebuilt 1 of 4 jobs
    rerun.write_text(
        LOG.split("[Tue Dec  1 10:01:12 2026]\nlocalrule all")[0] + "1 of 1 steps (100%) done\n"
    )
    assert rule_times.find_log("laptop", tmp_path) == whole
    again = tmp_path / "2026-12-01T130000.000000.snakemake.log"  # newer and whole: it wins
    again.write_text(LOG)
    assert rule_times.find_log("laptop", tmp_path) == again
