"""What produced a result: code version, packages, device, config."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path

import torch

_LIB = Path(__file__).resolve().parent
PACKAGES = ("alignlab", "torch", "transformer-lens", "numpy", "pandas", "scipy", "snakemake")


def _module_path(module: str) -> Path:
    parts = module.split(".")[1:]  # drop the leading "alignlab"
    path = _LIB.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imported_modules(path: Path) -> set[str]:
    """alignlab modules that a source file imports (statically, at any depth in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("alignlab")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alignlab"):
            found.add(node.module)
            # `from alignlab import checkpoints` imports a module, not a name
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if _module_path(m).exists()}


def module_closure(module: str) -> list[Path]:
    """Source files of `module` and of every alignlab module it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += sorted(_imported_modules(_module_path(name)))
    return sorted({_module_path(m) for m in seen} | {_LIB / "__init__.py"})


def code_version(*modules: str) -> str:
    """Short hash of the library code a computation depends on.

    Snakemake reruns a rule when its params or its own script change, but not when a module it
    imports changes; every rule that runs library code takes this as a param. With `modules`, only
    those modules and what they import count, so editing a figure does not retrain a model.
    """
    if modules:
        paths = sorted({path for module in modules for path in module_closure(module)})
    else:
        paths = sorted(_LIB.rglob("*.py"))
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(_LIB).as_posix().encode())
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
        "code_version": code_version(),  # all of lib/alignlab, to identify the checkout
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
