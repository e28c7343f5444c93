"""The ``torch`` runtime: run the module as it is (the reference path, and the one for GPUs).

On a CUDA device ``precision="fp16"`` / ``"bf16"`` runs the encoder under ``torch.autocast`` (outputs
are cast back to float32 so the light stages downstream keep their dtype), and ``compile=True``
wraps it in ``torch.compile`` (compiled once per input shape, worth it for videos).
"""

from __future__ import annotations

from typing import Any

from fastreasonseg.perception.registry import BackendSettings, register
from fastreasonseg.perception.runtimes import Encoder, EncoderSpec

_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


@register("runtime", "torch", default=True, description="PyTorch eager (GPUs: fp16/bf16 autocast, torch.compile)")
class TorchRuntime:
    name = "torch"

    def unavailable_reason(self) -> str | None:
        return None

    def compile(self, spec: EncoderSpec, settings: BackendSettings) -> tuple[Encoder, str]:
        import torch

        module = spec.module
        device = torch.device(settings.device)
        desc = "torch"
        if settings.compile:
            module = torch.compile(module)
            desc += " + torch.compile"
        dtype = getattr(torch, _DTYPES[settings.precision]) if settings.precision in _DTYPES else None
        if dtype is not None and device.type == "cpu":
            dtype = None  # no fast half-precision matmuls on most CPUs; stay exact
        if dtype is not None:
            desc += f" ({settings.precision} autocast)"

        def run(*inputs: Any) -> tuple[Any, ...]:
            with torch.inference_mode():
                if dtype is None:
                    out = module(*inputs)
                else:
                    with torch.autocast(device.type, dtype=dtype):
                        out = module(*inputs)
                    out = tuple(o.float() for o in out)
            return tuple(out)

        return run, desc
