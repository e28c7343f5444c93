"""Loading transformers models from a hub id or a local directory, with one clear error on failure."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from fastreasonseg.errors import ModelLoadError

T = TypeVar("T")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def looks_like_path(spec: str) -> bool:
    """True when ``spec`` is meant as a filesystem path rather than a hub id (``org/name``)."""
    return (
        spec.startswith(("/", "./", "../", "~", "\\"))
        or os.path.isabs(spec)
        or (len(spec) > 1 and spec[1] == ":")  # C:\...
        or spec.count("/") > 1
        or Path(spec).exists()
    )


def load_kwargs(spec: str) -> dict[str, Any]:
    """``from_pretrained`` arguments: local directories are read with ``local_files_only=True``."""
    return {"local_files_only": True} if Path(spec).expanduser().exists() else {}


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load-time chatter (progress bars, the sam2_video->sam2 type notice)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_model(role: str, spec: str, loader: Callable[[str, dict[str, Any]], T]) -> T:
    """Run ``loader(path_or_id, kwargs)``; any failure becomes :class:`ModelLoadError` naming role and model."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelLoadError(role, str(spec), "empty model name")
    path = str(Path(spec).expanduser()) if looks_like_path(spec) else spec
    if looks_like_path(spec):
        p = Path(path)
        if not p.exists():
            raise ModelLoadError(role, spec, f"the directory {p} does not exist")
        if not p.is_dir():
            raise ModelLoadError(role, spec, f"{p} is a file; pass the model's directory (with config.json)")
        if not (p / "config.json").exists():
            raise ModelLoadError(role, spec, f"{p} has no config.json; it is not a transformers model directory")
    try:
        with _quiet_transformers():
            return loader(path, load_kwargs(path))
    except ModelLoadError:
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(role, spec, f"{type(exc).__name__}: {reason}") from None


def torch_device(device: str) -> Any:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        from fastreasonseg.errors import InputError

        raise InputError(f"invalid torch device {device!r}: {exc}") from None
    return dev
