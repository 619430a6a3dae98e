# alignlab: one DAG for every experiment.
#   snakemake -n                        plan the laptop scale
#   snakemake --config scale=smoke      the whole DAG on tiny settings
#   snakemake --config only=grokking    one experiment (and the paper's parts for it)
#   snakemake --report paper/report.html    the HTML report of the last run
# Each experiments/<name>/rules.smk loads and validates its own config (so a bad config stops
# before any work, naming the key) and registers its final targets in TARGETS.
from pathlib import Path

from alignlab.config import SCALES, check_dag_config
from alignlab.provenance import code_version

# Every --config key the rules read (here, paper/rules.smk, experiments/scaling/rules.smk) and its
# allowed values: any other key or value (scal=smoke, only=grokkin) stops the plan here, before
# any job, instead of being ignored or failing later.
EXPERIMENT_NAMES = sorted(
    p.parent.name for p in (Path(workflow.basedir) / "experiments").glob("*/rules.smk")
)
check_dag_config(
    config,
    {
        "scale": SCALES,
        "only": EXPERIMENT_NAMES,
        "pdf": ["auto", "off"],
        "vectorize": ["auto", "on", "off"],
    },
)
SCALE = config.get("scale", "laptop")
ONLY = [name for name in str(config.get("only", "")).split(",") if name]
# experiment name -> the experiments whose outputs it reads (and whose paper sections its own
# cites): `only=` builds those too, so the one-experiment paper has every section it refers to.
READS = {}


def selected(name):
    """Whether the experiment is built: all of them, or those named by only= and what they read."""
    wanted, todo = set(), list(ONLY)
    while todo:
        current = todo.pop()
        if current not in wanted:
            wanted.add(current)
            todo += READS.get(current, [])
    return not ONLY or name in wanted


def code(module):
    """Hash of the library code a rule runs (the module, what it imports, and the job wrapper):
    a param of every rule that runs library code, so that a change to it reruns the rule."""
    return code_version(module, "alignlab.jobs")


ROOT = Path(workflow.basedir)
TARGETS = {}  # experiment name -> list of final outputs
# experiment name -> {"runs": {run_id: run config}, "runtime": minutes, "grouped": run ids another
# rule trains, "priority": which ready trainings start first (default 0)}: the modular-arithmetic
# runs the shared dataset and train rules make for it (lib/alignlab/workflow/modular.smk).
MODULAR = {}
# experiment name -> its explorer views (results/<name>/<scale>/explorer.json, built by a rule of
# its own); paper/rules.smk assembles them into paper/explorer/index.html.
EXPLORE = {}
# Experiments whose outputs others read (their rules files define the names the others use).
# circuits reads grokking's; circuit_discovery reads both. Included in this order, first.
UPSTREAM = ["grokking", "circuits"]


rule all:
    default_target: True
    input:
        lambda wc: [path for name, paths in TARGETS.items() if selected(name) for path in paths],
        lambda wc: PAPER_TARGETS,
    localrule: True


for rules_file in sorted(
    (ROOT / "experiments").glob("*/rules.smk"),
    key=lambda path: (
        UPSTREAM.index(path.parent.name) if path.parent.name in UPSTREAM else len(UPSTREAM),
        path.parent.name,
    ),
):

    include: rules_file


include: "lib/alignlab/workflow/modular.smk"
include: "paper/rules.smk"
