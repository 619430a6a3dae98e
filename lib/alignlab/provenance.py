"""What produced a result: code version, packages, device, config."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path

import torch

_LIB = Path(__file__).resolve().parent
PACKAGES = ("alignlab", "torch", "transformer-lens", "numpy", "pandas", "scipy", "snakemake")


def code_version(root: Path = _LIB) -> str:
    """Short hash of lib/alignlab's sources.

    Snakemake reruns a rule when its params or its own script change, but not when a module it
    imports changes; every rule that runs library code takes this as a param.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def config_hash(cfg: dict) -> str:
    """Short, stable hash of a resolved (JSON-able) config."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(config: dict, device: torch.device, threads: int, **extra) -> dict:
    return {
        "config": config,
        "code_version": code_version(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        "threads": threads,
        "seed": config.get("seed"),
        **extra,
    }


def write_json(obj: dict, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
