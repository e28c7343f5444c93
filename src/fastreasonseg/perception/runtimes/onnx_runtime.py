"""The ``onnx`` runtime: ``torch.onnx`` export (dynamo exporter, fixed shapes), run by ONNX Runtime.

``precision="int8"`` adds ONNX Runtime's dynamic quantisation (int8 weights, activations quantised
per batch at run time) on top of the fp32 export; it is an option, off by default (its deviations
from the torch path are in docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastreasonseg.perception.export_cache import CacheKey, ExportCache
from fastreasonseg.perception.registry import BackendSettings, register
from fastreasonseg.perception.runtimes import Encoder, EncoderSpec, ExportError, quiet_export, versions


def export_onnx(spec: EncoderSpec, out: Path) -> None:
    """``spec.module`` -> ``out`` (fp32 ONNX, fixed input shapes); raises :class:`ExportError`."""
    import torch

    try:
        with quiet_export(), torch.no_grad():
            torch.onnx.export(
                spec.module,
                spec.example,
                str(out),
                input_names=list(spec.input_names),
                output_names=list(spec.output_names) or None,
                dynamo=True,
                optimize=True,
                external_data=True,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx could not export it: {type(exc).__name__}: {_first_line(exc)}") from None
    if not out.is_file():
        raise ExportError("torch.onnx wrote no file")


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else ""


@register("runtime", "onnx", description="ONNX Runtime (CPU), torch.onnx export, optional int8 dynamic quantisation")
class OnnxRuntime:
    name = "onnx"

    def unavailable_reason(self) -> str | None:
        for mod, pkg in (("onnxruntime", "onnxruntime"), ("onnx", "onnx"), ("onnxscript", "onnxscript")):
            if importlib.util.find_spec(mod) is None:
                return f"the {pkg} package is not installed (pip install 'fastreasonseg[fast]')"
        return None

    def compile(self, spec: EncoderSpec, settings: BackendSettings) -> tuple[Encoder, str]:
        import onnxruntime as ort

        precision = "int8" if settings.precision == "int8" else "fp32"
        shape = tuple(int(s) for t in spec.example for s in t.shape)
        key = CacheKey(spec.part, "onnx", precision, shape, versions("onnxruntime", "onnx", "onnxscript"))

        def do_export(tmp: Path) -> list[str]:
            fp32 = tmp / "model.onnx"
            export_onnx(spec, fp32)
            if precision == "int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                try:
                    with quiet_export():
                        quantize_dynamic(fp32, tmp / "model.int8.onnx", weight_type=QuantType.QInt8)
                except Exception as exc:
                    raise ExportError(f"int8 quantisation failed: {type(exc).__name__}: {_first_line(exc)}") from None
                for f in list(tmp.iterdir()):
                    if not f.name.startswith("model.int8"):
                        f.unlink()
            return sorted(f.name for f in tmp.iterdir())

        import tempfile

        cache = ExportCache(settings.export_cache)
        tmp_holder = None
        if spec.model_dir is None:  # nowhere to key a cache entry: export into a temporary folder
            tmp_holder = tempfile.TemporaryDirectory(prefix="frs-onnx-")
            path = Path(tmp_holder.name)
            do_export(path)
            status, reason = "exported, not cached: model directory unknown", None
        else:
            res = cache.get_or_export(spec.model_dir, key, do_export)
            path, status, reason = res.path, ("cached" if res.reused else "exported"), res.reason
        name = "model.int8.onnx" if precision == "int8" else "model.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = int(settings.threads or _torch_threads())
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path / name), so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            if spec.model_dir is None:
                raise ExportError(f"ONNX Runtime cannot load the export: {_first_line(exc)}") from None
            # a cache entry that passed its digests but does not load: export once more, then give up
            res = cache.export(spec.model_dir, key, do_export, f"ONNX Runtime could not load it ({_first_line(exc)})")
            path, status, reason = res.path, "re-exported", res.reason
            try:
                sess = ort.InferenceSession(str(path / name), so, providers=["CPUExecutionProvider"])
            except Exception as exc2:
                raise ExportError(f"ONNX Runtime cannot load the export: {_first_line(exc2)}") from None
        in_names = [i.name for i in sess.get_inputs()]
        keep = tmp_holder

        def run(*inputs: Any) -> tuple[Any, ...]:
            import numpy as np
            import torch

            _ = keep  # keeps a temporary export alive as long as the session
            feed = {
                n: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
                for n, t in zip(in_names, inputs, strict=True)
            }
            return tuple(torch.from_numpy(o) for o in sess.run(None, feed))

        desc = f"onnxruntime {precision} ({status}{'; ' + reason if reason and status != 'cached' else ''})"
        return run, desc


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
