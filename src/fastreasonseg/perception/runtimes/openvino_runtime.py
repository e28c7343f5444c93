"""The ``openvino`` runtime: ``openvino.convert_model`` straight from the torch module, run by OpenVINO.

Weights stay float32 in the saved IR (``compress_to_fp16=False``) and inference precision is pinned
to f32, so results match the torch path on every CPU (OpenVINO would otherwise pick bf16 on CPUs that
have it). The first run of a model converts it (tens of seconds for the real-size models); later runs
load the cached IR in about a second.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastreasonseg.perception.export_cache import CacheKey, ExportCache
from fastreasonseg.perception.registry import BackendSettings, register
from fastreasonseg.perception.runtimes import Encoder, EncoderSpec, ExportError, quiet_export, versions


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(exc).__name__


@register("runtime", "openvino", description="OpenVINO (CPU), converted from the torch module, f32")
class OpenVinoRuntime:
    name = "openvino"

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "the openvino package is not installed (pip install 'fastreasonseg[fast]')"
        return None

    def compile(self, spec: EncoderSpec, settings: BackendSettings) -> tuple[Encoder, str]:
        import openvino as ov

        if settings.precision == "int8":
            raise ExportError("int8 is offered on the onnx runtime only (--backend onnx --precision int8)")
        shape = tuple(int(s) for t in spec.example for s in t.shape)
        key = CacheKey(spec.part, "openvino", "fp32", shape, versions("openvino"))

        def do_export(tmp: Path) -> list[str]:
            import torch

            try:
                with quiet_export(), torch.no_grad():
                    model = ov.convert_model(spec.module, example_input=spec.example)
                    ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            except Exception as exc:
                raise ExportError(f"openvino.convert_model failed: {type(exc).__name__}: {_first_line(exc)}") from None
            return sorted(f.name for f in tmp.iterdir())

        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": int(settings.threads or _torch_threads()),
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if spec.model_dir is None:
            import torch

            with quiet_export(), torch.no_grad():
                try:
                    converted = ov.convert_model(spec.module, example_input=spec.example)
                    compiled = core.compile_model(converted, "CPU", config)
                except Exception as exc:
                    raise ExportError(f"openvino could not convert it: {_first_line(exc)}") from None
            status = "converted, not cached: model directory unknown"
        else:
            cache = ExportCache(settings.export_cache)
            res = cache.get_or_export(spec.model_dir, key, do_export)
            status = "cached" if res.reused else f"converted: {res.reason}"
            try:
                compiled = core.compile_model(str(res.path / "model.xml"), "CPU", config)
            except Exception as exc:
                res = cache.export(spec.model_dir, key, do_export, f"OpenVINO could not load it ({_first_line(exc)})")
                status = f"re-converted: {res.reason}"
                try:
                    compiled = core.compile_model(str(res.path / "model.xml"), "CPU", config)
                except Exception as exc2:
                    raise ExportError(f"OpenVINO cannot load the export: {_first_line(exc2)}") from None
        request = compiled.create_infer_request()
        n_out = len(compiled.outputs)

        def run(*inputs: Any) -> tuple[Any, ...]:
            import numpy as np
            import torch

            feed = [np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32) for t in inputs]
            res = request.infer(feed)
            return tuple(torch.from_numpy(np.array(res[compiled.outputs[i]])) for i in range(n_out))

        return run, f"openvino f32 ({status})"


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
