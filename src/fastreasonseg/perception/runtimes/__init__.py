"""Runtimes for the heavy encoders of the perception models: one file per runtime.

A model backend wraps its expensive part (SAM-2's image encoder, Depth-Anything, OWLv2's image
tower) as a ``torch.nn.Module`` taking and returning tensors, describes it as an
:class:`EncoderSpec`, and calls :func:`compile_encoder`. The chosen runtime returns a callable with
the same inputs and outputs (torch tensors):

* ``torch`` (:mod:`.torch_runtime`): the module itself (GPU: fp16/bf16 autocast, optional ``torch.compile``);
* ``onnx`` (:mod:`.onnx_runtime`): exported with ``torch.onnx``, run by ONNX Runtime (optionally
  int8 dynamic quantisation);
* ``openvino`` (:mod:`.openvino_runtime`): converted with ``openvino.convert_model``, run by OpenVINO.

Exports are cached per model directory (:mod:`fastreasonseg.perception.export_cache`). When a
runtime is not installed or a model cannot be exported, :func:`compile_encoder` falls back to torch
and says so: a warning naming the model and the fallback, and a line in ``settings.notes`` that
the builder copies into the twin's ``meta["perception_notes"]``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastreasonseg.perception.registry import BackendSettings, Registry, default_registry

Encoder = Callable[..., tuple[Any, ...]]


@dataclass
class EncoderSpec:
    """One exportable part of a model."""

    model: str
    """The model's name as the user gave it (for messages)."""
    model_dir: Path | None
    """Its local directory (where exports are keyed); ``None`` when unknown (no cache, export each run)."""
    part: str
    """``sam2-vision``, ``depth``, ``owlv2-image``, ..."""
    module: Any
    """``torch.nn.Module``: ``forward(*tensors) -> tuple of tensors``"""
    example: tuple[Any, ...]
    """Example inputs (their shapes are the exported shapes)."""
    input_names: tuple[str, ...] = ("pixel_values",)
    output_names: tuple[str, ...] = ()


class Runtime(Protocol):
    """A way to run an :class:`EncoderSpec` (see the module docstring)."""

    name: str

    def unavailable_reason(self) -> str | None:
        """``None`` when usable here, else why not (e.g. the package is not installed)."""
        ...

    def compile(self, spec: EncoderSpec, settings: BackendSettings) -> tuple[Encoder, str]:
        """(callable, a short description such as ``"openvino (cached)"``); raises on export failure."""
        ...


class ExportError(RuntimeError):
    """A model part could not be exported or loaded by a runtime."""


AUTO_ORDER: dict[str, tuple[str, ...]] = {
    # measured on a 2-core AMD EPYC (AVX2), real-size random-weight models, docs/benchmarks.md:
    # OpenVINO runs SAM-2's encoder ~1.3x and Depth-Anything ~1.8x faster than torch; for OWLv2's
    # 3600-token ViT torch (SDPA) was fastest, ONNX Runtime and OpenVINO slower.
    "segmenter": ("openvino", "onnx", "torch"),
    "tracker": ("openvino", "onnx", "torch"),
    "depth": ("openvino", "onnx", "torch"),
    "labeller": ("torch",),
}


def resolve_runtime(name: str, stage: str, device: str, registry: Registry | None = None) -> str:
    """``auto`` -> the fastest runtime installed for ``stage`` (torch on GPUs); other names pass through."""
    reg = registry or default_registry
    if name != "auto":
        reg.get("runtime", name)  # unknown names fail here, clearly
        return name
    if not device.startswith("cpu"):
        return "torch"
    for cand in AUTO_ORDER.get(stage, ("torch",)):
        try:
            rt = reg.get("runtime", cand).factory()
        except Exception:
            continue
        if rt.unavailable_reason() is None:
            return cand
    return "torch"


def compile_encoder(spec: EncoderSpec, settings: BackendSettings, registry: Registry | None = None) -> Encoder:
    """The encoder on ``settings.runtime``; torch (with a note and a warning) when that fails."""
    reg = registry or default_registry
    name = settings.runtime
    if name != "torch":
        rt = reg.get("runtime", name).factory()
        why = rt.unavailable_reason()
        if why is None:
            try:
                fn, desc = rt.compile(spec, settings)
                settings.notes.append(f"{spec.part} of {spec.model}: {desc}")
                return fn
            except ExportError as exc:
                why = str(exc)
        note = f"{spec.part} of {spec.model}: {name} runtime unavailable ({why}); fell back to torch"
        settings.notes.append(note)
        warnings.warn(note, RuntimeWarning, stacklevel=2)
    fn, desc = reg.get("runtime", "torch").factory().compile(spec, settings)
    if name == "torch":
        settings.notes.append(f"{spec.part} of {spec.model}: {desc}")
    return fn


def local_model_dir(model: str) -> Path | None:
    """The directory holding ``model`` (a local path, or a hub id already in the local hub cache)."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(model, "config.json")
        if isinstance(hit, str):
            return Path(hit).parent
    except Exception:
        return None
    return None


def versions(*modules: str) -> tuple[tuple[str, str], ...]:
    """``(module, version)`` pairs of the installed packages (part of every cache key)."""
    import importlib.metadata as md

    out = []
    for m in ("torch", "transformers", *modules):
        try:
            out.append((m, md.version(m)))
        except md.PackageNotFoundError:
            out.append((m, "missing"))
    return tuple(out)


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Silence the exporters' progress lines and tracer warnings."""
    import io
    import logging

    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)
