"""Backends chosen by name: one registry of model backends and runtimes, filled by one file each.

Two kinds of entries:

* **model backends** (``labeller``, ``segmenter``, ``depth``, ``tracker``): a class per model family
  (OWLv2, OWL-ViT, SAM-2, Depth-Anything, ...), constructed as ``factory(model, settings)`` where
  ``model`` is a hub id or directory and ``settings`` a :class:`BackendSettings`. Each declares the
  ``model_type`` values of ``config.json`` it reads, so a model directory picks its backend by itself;
* **runtimes** (``runtime``): what runs a model's heavy encoder (``torch``, ``onnx``, ``openvino``).

Every module in ``fastreasonseg/perception/backends/`` and ``fastreasonseg/perception/runtimes/`` is
imported on first lookup, and registers itself with :func:`register`. Adding a backend is adding one
file there::

    # fastreasonseg/perception/backends/my_detector.py
    from fastreasonseg.perception.registry import register

    @register("labeller", "my-detector", model_types=("my_detector",))
    class MyDetector:
        def __init__(self, model: str, settings): ...
        def detect(self, image, vocabulary, threshold): ...   # -> Detections
        def classify(self, image, boxes, candidates): ...

and selecting it with ``PerceptionConfig(labeller="path/to/model")`` (its ``config.json`` says
``"model_type": "my_detector"``) or ``PerceptionConfig(labeller="my-detector:path/to/model")``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastreasonseg.errors import InputError

KINDS = ("labeller", "segmenter", "depth", "tracker", "runtime")
_PACKAGES = ("fastreasonseg.perception.backends", "fastreasonseg.perception.runtimes")


@dataclass(frozen=True)
class BackendSpec:
    """One registered entry."""

    kind: str
    name: str
    factory: Callable[..., Any]
    model_types: tuple[str, ...] = ()
    """``config.json`` ``model_type`` values this backend reads (model backends)."""
    name_hints: tuple[str, ...] = ()
    """Substrings of a hub id / directory name that select this backend when no ``config.json`` is readable."""
    default: bool = False
    """The backend used for this kind when nothing else matches."""
    description: str = ""


@dataclass
class BackendSettings:
    """What a model backend is told besides the model: where and how to run (from ``PerceptionConfig``)."""

    device: str = "cpu"
    runtime: str = "torch"
    """Runtime of the heavy encoder: ``torch``, ``onnx``, ``openvino`` (already resolved from ``auto``)."""
    precision: str = "fp32"
    """``fp32``; ``int8`` (dynamic quantisation, ``onnx`` runtime); ``fp16`` / ``bf16`` (torch on a GPU)."""
    input_size: int | None = None
    """Model input side (labeller: square side; segmenter: square side; depth: short side); ``None`` = native."""
    threads: int | None = None
    export_cache: str | None = None
    compile: bool = False
    notes: list[str] = field(default_factory=list)
    """Messages a backend leaves for the twin (e.g. a runtime fallback); the pipeline copies them to ``meta``."""


class Registry:
    """Name -> :class:`BackendSpec`, per kind; filled by :func:`register` and module discovery."""

    def __init__(self, packages: tuple[str, ...] = _PACKAGES, *, base: Registry | None = None) -> None:
        """``packages``: where modules are discovered; ``base``: a registry whose entries this one starts with."""
        self._entries: dict[str, dict[str, BackendSpec]] = {k: {} for k in KINDS}
        if base is not None:
            base.discover()
            for kind, entries in base._entries.items():
                self._entries[kind].update(entries)
        self._packages = packages
        self._discovered = False

    def add(self, spec: BackendSpec) -> None:
        if spec.kind not in self._entries:
            raise ValueError(f"unknown backend kind {spec.kind!r}; kinds: {', '.join(KINDS)}")
        self._entries[spec.kind][spec.name] = spec

    def discover(self) -> None:
        """Import every backend / runtime module once (each registers itself)."""
        if self._discovered:
            return
        self._discovered = True
        for pkg_name in self._packages:
            pkg = importlib.import_module(pkg_name)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{pkg_name}.{info.name}")

    def names(self, kind: str) -> list[str]:
        self.discover()
        return sorted(self._entries[kind])

    def get(self, kind: str, name: str) -> BackendSpec:
        self.discover()
        entries = self._entries.get(kind)
        if entries is None:
            raise InputError(f"unknown backend kind {kind!r}; kinds: {', '.join(KINDS)}")
        if name not in entries:
            raise InputError(f"unknown {kind} backend {name!r}; registered: {', '.join(sorted(entries)) or 'none'}")
        return entries[name]

    def resolve(self, kind: str, model: str) -> tuple[BackendSpec, str]:
        """The backend for ``model`` and the model spec without any ``name:`` prefix.

        ``"name:MODEL"`` picks a backend by name; otherwise a directory's ``config.json``
        ``model_type`` decides, then name hints, then the kind's default.
        """
        self.discover()
        entries = self._entries[kind]
        if ":" in model:
            prefix, rest = model.split(":", 1)
            if prefix in entries and rest:
                return entries[prefix], rest
        mtype = _model_type(model)
        if mtype is not None:
            for spec in entries.values():
                if mtype in spec.model_types:
                    return spec, model
        low = model.lower()
        for spec in sorted(entries.values(), key=lambda s: -max((len(h) for h in s.name_hints), default=0)):
            if any(h in low for h in spec.name_hints):
                return spec, model
        defaults = [s for s in entries.values() if s.default]
        if defaults:
            return defaults[0], model
        raise InputError(f"no {kind} backend for {model!r}; registered: {', '.join(sorted(entries)) or 'none'}")


def _model_type(model: str) -> str | None:
    p = Path(model).expanduser() / "config.json"
    try:
        if p.is_file():
            return str(json.loads(p.read_text()).get("model_type") or "") or None
    except (OSError, ValueError):
        return None
    return None


default_registry = Registry()
"""The registry the pipeline uses unless given another one."""


def register(
    kind: str,
    name: str,
    *,
    model_types: tuple[str, ...] = (),
    name_hints: tuple[str, ...] = (),
    default: bool = False,
    description: str = "",
    registry: Registry | None = None,
) -> Callable[[Any], Any]:
    """Class/function decorator: register ``factory`` under ``(kind, name)``."""

    def deco(factory: Any) -> Any:
        (registry or default_registry).add(
            BackendSpec(kind, name, factory, tuple(model_types), tuple(name_hints), default, description)
        )
        return factory

    return deco
