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


_ROLE_FLAGS = {"segmenter": "--segmenter", "depth": "--depth", "labeller": "--labeller"}
_PROBES: dict[str, str | None] = {}
"""Hub reachability per endpoint, probed once per process (``None`` = reachable, else the reason)."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _offline_env() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE",))


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """``None`` when the hub answers a TCP connection, else why not (probed once per endpoint, bounded in time).

    With a proxy configured (``HTTPS_PROXY`` / ``HTTP_PROXY``) the hub is assumed reachable: the proxy decides.
    """
    if _offline_env():
        return "HF_HUB_OFFLINE is set"
    endpoint = hub_endpoint()
    if endpoint in _PROBES:
        return _PROBES[endpoint]
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        _PROBES[endpoint] = None
        return None
    import socket
    import threading
    from urllib.parse import urlparse

    u = urlparse(endpoint)
    host, port = u.hostname or "", u.port or (443 if u.scheme == "https" else 80)
    result: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as exc:
            result.append(f"{type(exc).__name__}: {exc.strerror or exc}")

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 1.0)  # DNS lookups ignore the socket timeout: bound the whole probe
    _PROBES[endpoint] = result[0] if result else f"no answer within {timeout + 1.0:.0f} s"
    return _PROBES[endpoint]


def _in_hub_cache(spec: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except Exception:
        return False


def _hub_kwargs(role: str, spec: str) -> dict[str, Any]:
    """For a hub id: read it from the local hub cache when it is there, fail at once when the hub is unreachable.

    Without this, transformers retries an unreachable hub for about a minute before giving up.
    """
    if _in_hub_cache(spec):
        return {"local_files_only": True}
    why = hub_unreachable()
    if why is not None:
        flag = _ROLE_FLAGS.get(role, f"--{role}")
        raise ModelLoadError(
            role,
            spec,
            f"it is not in the local hub cache and the model hub ({hub_endpoint()}) cannot be reached ({why}). "
            f"Pass a local model directory instead ({flag} DIR on the command line, PerceptionConfig.{role} in Python)",
        )
    return {}


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
    kwargs = load_kwargs(path) if looks_like_path(spec) else _hub_kwargs(role, spec)
    try:
        with _quiet_transformers():
            return loader(path, kwargs)
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
