"""Nothing in the project unpickles: checkpoints are safetensors, tables parquet, configs YAML."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNSAFE = re.compile(
    r"torch\.load\(|pickle\.loads?\(|allow_pickle\s*=\s*True|yaml\.load\(|yaml\.unsafe_load"
)


def _sources():
    for folder in ("lib", "experiments", "paper", "bench"):
        yield from (REPO / folder).rglob("*.py")
    yield from (REPO / "experiments").rglob("*.smk")
    yield REPO / "Snakefile"


def test_no_pickle_or_unsafe_yaml_loading_anywhere():
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for path in _sources()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if UNSAFE.search(line)
    ]
    assert not offenders, f"unsafe deserialisation at {offenders}"


def test_the_scan_would_catch_a_pickle_load():
    assert UNSAFE.search("state = torch.load(path)")
    assert UNSAFE.search("yaml.load(fh)") and not UNSAFE.search("yaml.safe_load(fh)")
