#!/bin/bash
# Old and new code side by side at the same moment (one core each, whole job processes), so that
# a host whose speed drifts over the day affects both alike. Needs a laptop run in results/ (the
# jobs take their run configs from it) and the old code as a git worktree:
#   git worktree add /tmp/old <commit>; bench/side_by_side/run.sh /tmp/old
set -euo pipefail
old_tree=${1:?usage: run.sh OLD_WORKTREE}
here=$(pwd)
OLD="env PYTHONPATH=$old_tree/lib:$old_tree OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
NEW="env PYTHONPATH=$here/lib:$here OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
out=$(mktemp -d)
ab() {  # name, old job args..., --, new job args...
  local name=$1; shift
  local old=(); while [ "$1" != "--" ]; do old+=("$1"); shift; done; shift
  $OLD .venv/bin/python "${old[@]}" "$out/old_$name" > "$out/old_$name.log" 2>&1 &
  $NEW .venv/bin/python "$@" "$out/new_$name" > "$out/new_$name.log" 2>&1 &
  wait
  echo "$name old $(grep WALL "$out/old_$name.log" | cut -d' ' -f2) new $(grep WALL "$out/new_$name.log" | cut -d' ' -f2)"
}
J=bench/side_by_side
ab grok $J/job_grok.py 1 1500 -- $J/job_grok.py 0 1500  # old: compiled, as the laptop ran it
ab phase $J/job_phase.py 1000 -- $J/job_phase.py 1000
ab reward32 $J/job_reward.py 32 -- $J/job_reward.py 32
ab reward4 $J/job_reward.py 4 -- $J/job_reward.py 4
ab llc $J/job_llc.py 20000 0.005 -- $J/job_llc.py 20000 0.005
ab llcfrozen $J/job_llc.py 20000 0.0 -- $J/job_llc.py 20000 0.0
for group in ensemble dm4 dm32; do  # a job per run vs one job per group
  ab "$group" $J/job_group.py "$group" alone -- $J/job_group.py "$group" stacked
done
