"""What produced a result: code version, packages, device, config."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_LIB = Path(__file__).resolve().parent
# First-party packages whose source counts towards a rule's code version: the library, and the
# experiments (a folder per experiment, beside lib/ in a checkout; absent from an installed wheel).
_ROOTS = {"alignlab": _LIB, "experiments": _LIB.parent.parent / "experiments"}
PACKAGES = ("alignlab", "torch", "transformer-lens", "numpy", "pandas", "scipy", "snakemake")


def _module_path(module: str) -> Path:
    top, *parts = module.split(".")
    path = _ROOTS[top].joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _first_party(name: str) -> bool:
    return name.split(".")[0] in _ROOTS


def _imported_modules(path: Path) -> set[str]:
    """First-party modules that a source file imports (statically, at any depth in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if _first_party(a.name)}
        elif isinstance(node, ast.ImportFrom) and _first_party(node.module or ""):
            found.add(node.module)
            # `from alignlab import checkpoints` imports a module, not a name
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if _module_path(m).exists()}


def module_closure(module: str) -> list[Path]:
    """Source files of `module` and of every first-party module it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += sorted(_imported_modules(_module_path(name)))
    return sorted({_module_path(m) for m in seen} | {_LIB / "__init__.py"})


def _relative(path: Path) -> str:
    """A path relative to its package's parent, so the hash is the same in every checkout."""
    for root in _ROOTS.values():
        if path.is_relative_to(root):
            return path.relative_to(root.parent).as_posix()
    raise ValueError(f"{path} is not first-party code")


def code_version(*modules: str) -> str:
    """Short hash of the code a computation depends on.

    Snakemake reruns a rule when its params or its own script change, but not when a module it
    imports changes; every rule that runs first-party code takes this as a param. With `modules`,
    only those modules and what they import count, so editing a figure does not retrain a model.
    """
    if modules:
        paths = sorted({path for module in modules for path in module_closure(module)})
    else:
        paths = sorted(_LIB.rglob("*.py"))
    digest = hashlib.sha256()
    for path in paths:
        digest.update(_relative(path).encode())
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


def _device_name(device: torch.device) -> str:
    if device.type != "cuda":
        return platform.processor()
    import torch  # only a job that trains on CUDA has a device name to ask torch for

    return torch.cuda.get_device_name(device)


def provenance(config: dict, device: torch.device, threads: int, **extra) -> dict:
    return {
        "config": config,
        "code_version": code_version(),  # all of lib/alignlab, to identify the checkout
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": _device_name(device),
        "threads": threads,
        "seed": config.get("seed"),
        **extra,
    }


def write_json(obj: dict, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
