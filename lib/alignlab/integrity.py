"""Checksummed, byte-reproducible safetensors files, and the clean-up of interrupted writes.

Every file alignlab writes in safetensors format carries, in its metadata under `sha256`, the
SHA-256 of its content: the other metadata entries, then every tensor's name, dtype and shape,
then the tensors' bytes, all in sorted order. A reader accepts a file only if

- its header is exactly the canonical encoding written here (sorted JSON keys, tensors laid out
  in a fixed order, nothing appended), so any changed header byte is caught, and
- the checksum recomputed from what it read matches the stored one, so any changed data byte
  is caught.

The encoding is written here rather than by `safetensors.torch.save_file` because that function
writes the metadata in hash-map order, which differs from process to process: two runs with the
same tensors gave different files. Safetensors itself reads these files as usual.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes

DIGEST_KEY = "sha256"
_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


REPAIR_HINT = "rerun the run's training job (e.g. snakemake --forcerun <train rule>) to repair it"


class CheckpointError(RuntimeError):
    """A checkpoint that is truncated, corrupt, foreign or does not match the model or run.

    `detail`: what is wrong, without the file name or the repair hint (for a training job's own
    log, which names the file itself and is the repair)."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail or message


def _broken(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(f"{path}: {detail}; {REPAIR_HINT}", detail)


def _raw(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _dtype(tensor: torch.Tensor) -> str:
    if tensor.dtype not in _DTYPES:
        raise TypeError(f"dtype {tensor.dtype} cannot be stored in a checkpoint")
    return _DTYPES[tensor.dtype]


def content_digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 of the metadata (less the digest itself) and the tensors, in sorted order."""
    described = {
        "metadata": {k: v for k, v in sorted(metadata.items()) if k != DIGEST_KEY},
        "tensors": [[name, _dtype(tensors[name]), list(tensors[name].shape)]
                    for name in sorted(tensors)],
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode() + b"\0")
    for name in sorted(tensors):
        digest.update(_raw(tensors[name]))
    return digest.hexdigest()


def encode(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The canonical safetensors bytes of (tensors, metadata); the checksum must be in metadata.

    Tensors are laid out by decreasing item size, then name (as safetensors does, so that every
    tensor stays aligned to its item size after the 8-byte-aligned header)."""
    order = sorted(tensors, key=lambda name: (-tensors[name].element_size(), name))
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    chunks, offset = [], 0
    for name in order:
        raw = _raw(tensors[name])
        shape = list(tensors[name].shape)
        header[name] = {"dtype": _dtype(tensors[name]), "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}  # fmt: skip
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def with_digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """`encode` with the content checksum added to the metadata."""
    return encode(tensors, {**metadata, DIGEST_KEY: content_digest(tensors, metadata)})


def _header(path: Path, data: bytes) -> dict:
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if size < 0 or 8 + size > len(data):
        raise _broken(path, "not a readable safetensors checkpoint (truncated header)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, ValueError) as err:
        raise _broken(path, f"not a readable safetensors checkpoint ({err})") from err
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
        raise _broken(path, "not a readable safetensors checkpoint (bad header)")
    return header


def read_verified(path: Path, expected_format: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a file written by `with_digest`, or CheckpointError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _broken(path, f"cannot be read ({err})") from err
    metadata = _header(path, data).get("__metadata__", {})
    found = metadata.get("format")
    if found != expected_format:
        ours = isinstance(found, str) and found.split("-v")[0] == expected_format.split("-v")[0]
        what = "written by another alignlab version" if ours else "foreign checkpoint"
        raise _broken(path, f"{what} (format {found!r}, expected {expected_format!r})")
    if DIGEST_KEY not in metadata:
        raise _broken(path, "has no checksum")
    try:
        loaded = load_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise _broken(path, f"not a readable safetensors checkpoint ({err})") from err
    # Sorted by name, as safetensors' load_file gives them: `load` gives hash-map order, and
    # readers that sum over parameters in dict order would then round differently run to run.
    tensors = {name: loaded[name] for name in sorted(loaded)}
    if encode(tensors, metadata) != data:
        raise _broken(path, "header or length altered since it was written")
    if content_digest(tensors, metadata) != metadata[DIGEST_KEY]:
        raise _broken(path, "checksum mismatch: data altered since it was written")
    return tensors, metadata


def remove_stale_temps(*dirs: Path, pattern: str = ".*.tmp") -> list[Path]:
    """Delete what a killed job left in `dirs`: the temporary files of atomic writes (`.*.tmp`),
    or scratch directories matching `pattern`.

    Call only at the start of the job that owns the directories: no write is in flight then."""
    removed = []
    for folder in dirs:
        for entry in sorted(Path(folder).glob(pattern)) if Path(folder).is_dir() else []:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
