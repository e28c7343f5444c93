"""Exported encoder graphs (ONNX, OpenVINO IR), cached per model directory: export once, reuse.

Layout: ``ROOT/<model name>-<hash of its path>/<part>-<runtime>-<precision>-<shape>/`` holding the
exported files and ``manifest.json``:

* ``fingerprint``: the model's ``config.json`` digest and each weight file's size, mtime and content
  digest (the content digest is recomputed only when size or mtime changed, so a copied but identical
  checkpoint keeps its exports and a fine-tuned one with the same tensor shapes does not);
* ``versions``: torch / transformers / runtime versions and :data:`EXPORT_FORMAT` (our export code);
* ``files``: name -> size and blake2b digest of every exported file.

An entry is used only when all three match; otherwise (model changed, runtime upgraded, a file
truncated or edited) it is exported again and the reason is returned so callers can say so. The
default root is ``$FASTREASONSEG_CACHE/exports`` or ``~/.cache/fastreasonseg/exports``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPORT_FORMAT = 1
"""Bump when the exported graphs change meaning (invalidates every cache entry)."""

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def default_cache_root() -> Path:
    base = os.environ.get("FASTREASONSEG_CACHE")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastreasonseg"
    return root / "exports"


def _digest_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:32]


_WEIGHT_DIGESTS: dict[tuple[str, int, int], str] = {}
"""Memo of weight-file digests by (path, size, mtime_ns): a pure function's results, never stale."""


def _weight_digest(path: Path, size: int, mtime_ns: int) -> str:
    key = (str(path.resolve()), size, mtime_ns)
    if key not in _WEIGHT_DIGESTS:
        _WEIGHT_DIGESTS[key] = _digest_file(path)
    return _WEIGHT_DIGESTS[key]


def model_fingerprint(model_dir: Path, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"config": digest, "weights": {name: [size, mtime_ns, digest]}}`` of a model directory.

    Weight digests are reused from ``previous`` when size and mtime are unchanged.
    """
    prev_w = (previous or {}).get("weights", {}) if isinstance(previous, dict) else {}
    cfg = model_dir / "config.json"
    out: dict[str, Any] = {"config": _digest_file(cfg) if cfg.is_file() else None, "weights": {}}
    for f in sorted(model_dir.iterdir()):
        if not f.is_file() or not f.name.endswith(_WEIGHT_SUFFIXES):
            continue
        st = f.stat()
        old = prev_w.get(f.name)
        if isinstance(old, list) and len(old) == 3 and old[0] == st.st_size and old[1] == st.st_mtime_ns:
            digest = old[2]
        else:
            digest = _weight_digest(f, st.st_size, st.st_mtime_ns)
        out["weights"][f.name] = [st.st_size, st.st_mtime_ns, digest]
    return out


def _same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Fingerprints match on content (config digest, weight names, sizes and content digests)."""
    if not isinstance(a, dict) or not isinstance(b, dict) or a.get("config") != b.get("config"):
        return False
    wa, wb = a.get("weights") or {}, b.get("weights") or {}
    if set(wa) != set(wb):
        return False
    return all(wa[k][0] == wb[k][0] and wa[k][2] == wb[k][2] for k in wa)


@dataclass(frozen=True)
class CacheKey:
    """What identifies one export of one model part."""

    part: str
    """e.g. ``sam2-vision``, ``depth``, ``owlv2-image``"""
    runtime: str
    precision: str = "fp32"
    shape: tuple[int, ...] = ()
    versions: tuple[tuple[str, str], ...] = ()

    def dirname(self) -> str:
        shape = "x".join(str(s) for s in self.shape) or "any"
        return _safe(f"{self.part}-{self.runtime}-{self.precision}-{shape}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


@dataclass
class CacheResult:
    """Where the usable export lives, and why it was (re-)exported (``None`` = reused)."""

    path: Path
    reused: bool
    reason: str | None = None


class ExportCache:
    """Exports of every model under one root directory (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_cache_root()

    def model_dir(self, model_path: Path) -> Path:
        real = model_path.expanduser().resolve()
        h = hashlib.blake2b(str(real).encode(), digest_size=6).hexdigest()
        return self.root / f"{_safe(real.name)}-{h}"

    def entry_dir(self, model_path: Path, key: CacheKey) -> Path:
        return self.model_dir(model_path) / key.dirname()

    def check(self, model_path: Path, key: CacheKey) -> tuple[dict[str, Any] | None, str | None]:
        """(manifest, None) when the entry is usable, else (old manifest or None, the reason it is not)."""
        entry = self.entry_dir(model_path, key)
        mf = entry / "manifest.json"
        if not mf.is_file():
            return None, "no export yet"
        try:
            manifest = json.loads(mf.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as exc:
            return None, f"the cache manifest {mf} is unreadable ({exc})"
        if manifest.get("format") != EXPORT_FORMAT:
            return manifest, "the export format changed"
        if manifest.get("versions") != {k: v for k, v in key.versions}:
            return manifest, "the runtime / torch / transformers versions changed"
        now = model_fingerprint(model_path, manifest.get("fingerprint"))
        if not _same_model(now, manifest.get("fingerprint") or {}):
            return manifest, "the model changed since it was exported"
        for name, meta in (manifest.get("files") or {}).items():
            f = entry / name
            if not f.is_file():
                return manifest, f"the exported file {f} is missing"
            if f.stat().st_size != meta.get("size") or _digest_file(f) != meta.get("digest"):
                return manifest, f"the exported file {f} is corrupt (size or digest differ)"
        if not manifest.get("files"):
            return manifest, "the cache entry lists no files"
        return manifest, None

    def get_or_export(self, model_path: Path, key: CacheKey, export: Callable[[Path], list[str]]) -> CacheResult:
        """The entry's directory, exporting into it first when it is missing or invalid.

        ``export(tmp_dir)`` writes the files and returns their names; it runs in a temporary
        directory that replaces the entry only when it succeeded, so a failed or interrupted export
        never leaves a half-written entry behind.
        """
        entry = self.entry_dir(model_path, key)
        _, reason = self.check(model_path, key)
        if reason is None:
            return CacheResult(entry, True)
        return self.export(model_path, key, export, reason)

    def export(self, model_path: Path, key: CacheKey, export: Callable[[Path], list[str]], reason: str) -> CacheResult:
        entry = self.entry_dir(model_path, key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        try:
            names = export(tmp)
            files = {n: {"size": (tmp / n).stat().st_size, "digest": _digest_file(tmp / n)} for n in names}
            manifest = {
                "format": EXPORT_FORMAT,
                "model": str(model_path.expanduser().resolve()),
                "key": {"part": key.part, "runtime": key.runtime, "precision": key.precision, "shape": list(key.shape)},
                "versions": {k: v for k, v in key.versions},
                "fingerprint": model_fingerprint(model_path),
                "files": files,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if entry.exists():
                shutil.rmtree(entry, ignore_errors=True)
            os.replace(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return CacheResult(entry, False, reason)

    def invalidate(self, model_path: Path, key: CacheKey) -> None:
        shutil.rmtree(self.entry_dir(model_path, key), ignore_errors=True)
