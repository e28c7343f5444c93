"""Export a trained adapter: the PEFT adapter, a GGUF LoRA for llama.cpp, and (on request) a merged GGUF.

GGUF LoRA (written with the ``gguf`` package, the layout of llama.cpp's ``convert_lora_to_gguf.py``): metadata
``general.architecture`` (the base's, ``llama``), ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``; per adapted weight two tensors ``blk.N.<name>.weight.lora_a`` (PEFT ``lora_A``, shape
``(r, in)``) and ``.lora_b`` (``lora_B``, ``(out, r)``), F16 by default. llama.cpp scales the product by
``alpha / r`` like PEFT. llama-architecture GGUFs store ``attn_q``/``attn_k`` with their rows permuted for llama.cpp's
rotary layout (``convert_hf_to_gguf``'s ``permute``); transformers undoes it when it loads a GGUF, so an adapter
trained in transformers gets the same row permutation on ``lora_b`` of ``q_proj`` and ``k_proj`` here.

Use it with ``Llama(model_path=base.gguf, lora_path=adapter.gguf)`` or
``LlamaCppRuntime(lora_path="adapter.gguf")``.

Merged GGUF (``export.merged = q8_0 | f16 | f32``): the adapter merged into the float base and written as a full
llama GGUF with the base GGUF's metadata (tokenizer, chat template). Q8_0 keeps the adapter; re-quantising to Q4_1
would round the small deltas away (docs/design.md §6), so Q4_x is not offered.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from fastreasonseg.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "LLAMA_MODULES",
    "export_adapter",
    "gguf_metadata",
    "merge_adapter_state_dict",
    "peft_to_gguf_lora",
    "permute_rows",
    "write_llama_gguf",
]

LLAMA_MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
"""HF llama module → llama.cpp tensor name (``blk.N.<name>.weight``)."""


def permute_rows(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's q/k row permutation (``convert_hf_to_gguf.LlamaModel.permute``) of a ``(out, ...)`` matrix."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (arrays as lists, strings decoded)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    out = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        try:
            out[name] = f.contents()
        except Exception:  # pragma: no cover - exotic field types
            continue
    return out


def _heads(base_gguf: str | os.PathLike[str] | None, base_config: dict[str, Any] | None) -> tuple[int, int, str]:
    if base_gguf is not None:
        md = gguf_metadata(base_gguf)
        arch = md.get("general.architecture", "llama")
        n_head = int(md[f"{arch}.attention.head_count"])
        n_kv = int(md.get(f"{arch}.attention.head_count_kv", n_head))
        return n_head, n_kv, arch
    if base_config is not None:
        n_head = int(base_config["num_attention_heads"])
        return n_head, int(base_config.get("num_key_value_heads") or n_head), "llama"
    raise InputError("exporting a GGUF LoRA needs the base GGUF (for its head counts) or the base config")


def _load_adapter(adapter_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    d = Path(adapter_dir)
    cfg_path = d / "adapter_config.json"
    if not cfg_path.is_file():
        raise InputError(f"{d} is not a PEFT adapter directory (no adapter_config.json)")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("peft_type", "LORA") != "LORA":
        raise InputError(f"only LoRA adapters can be exported, {d} is {cfg.get('peft_type')}")
    weights = d / "adapter_model.safetensors"
    if not weights.is_file():
        raise InputError(f"{d} has no adapter_model.safetensors")
    return cfg, load_file(str(weights))


def _lora_pairs(tensors: dict[str, np.ndarray]) -> dict[tuple[int, str], dict[str, np.ndarray]]:
    """``{(layer, hf module): {"A": (r, in), "B": (out, r)}}`` from PEFT tensor names."""
    import re

    pat = re.compile(
        r"layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])(?:\.default)?\.weight$"
    )
    out: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    unknown = []
    for name, t in tensors.items():
        m = pat.search(name)
        if not m:
            unknown.append(name)
            continue
        out.setdefault((int(m.group(1)), m.group(2)), {})[m.group(3)] = t.astype(np.float32)
    if unknown:
        raise InputError(f"adapter tensors with no llama.cpp equivalent: {unknown[:3]} (only LoRA on attention/MLP)")
    bad = [k for k, v in out.items() if set(v) != {"A", "B"}]
    if bad:
        raise InputError(f"incomplete LoRA pairs in the adapter: {bad[:3]}")
    return out


def peft_to_gguf_lora(
    adapter_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    base_gguf: str | os.PathLike[str] | None = None,
    base_config: dict[str, Any] | None = None,
    dtype: str = "f16",
) -> Path:
    """Convert a PEFT LoRA adapter of a llama-architecture model to a llama.cpp GGUF LoRA."""
    from gguf import GGMLQuantizationType, GGUFWriter

    cfg, tensors = _load_adapter(adapter_dir)
    if cfg.get("use_rslora"):
        raise InputError("rsLoRA adapters are not supported by llama.cpp's alpha/r scaling")
    if cfg.get("use_dora"):
        raise InputError("DoRA adapters cannot be converted to a GGUF LoRA")
    r = int(cfg["r"])
    alpha = float(cfg.get("lora_alpha", r))
    pattern = cfg.get("rank_pattern") or {}
    if pattern:
        raise InputError("adapters with a per-module rank_pattern are not supported")
    n_head, n_kv, arch = _heads(base_gguf, base_config)
    np_dtype, qtype = (
        (np.float16, GGMLQuantizationType.F16) if dtype == "f16" else (np.float32, GGMLQuantizationType.F32)
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    w = GGUFWriter(str(tmp), arch)
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    w.add_string("general.name", Path(adapter_dir).name)
    for (layer, module), ab in sorted(_lora_pairs(tensors).items()):
        a, b = ab["A"], (_llama_rows(module, ab["B"], n_head, n_kv) if arch == "llama" else ab["B"])
        base = f"blk.{layer}.{LLAMA_MODULES[module]}.weight"
        w.add_tensor(f"{base}.lora_a", np.ascontiguousarray(a.astype(np_dtype)), raw_dtype=qtype)
        w.add_tensor(f"{base}.lora_b", np.ascontiguousarray(b.astype(np_dtype)), raw_dtype=qtype)
    return _finish(w, tmp, out)


def _llama_rows(module: str, t: Any, n_head: int, n_kv: int) -> Any:
    """llama.cpp's row order for the q / k projections (its rotary layout); other modules as they are. Only the
    ``llama`` architecture permutes them (``convert_hf_to_gguf`` leaves e.g. ``gemma3`` rows as they are)."""
    if module == "self_attn.q_proj":
        return permute_rows(t, n_head, n_head)
    if module == "self_attn.k_proj":
        return permute_rows(t, n_head, n_kv)
    return t


def _finish(w: Any, tmp: Path, out: Path) -> Path:
    """Write a GGUF writer's file to ``tmp``, then move it to ``out`` (never a half-written ``out``)."""
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------------------------- full models
def merge_adapter_state_dict(base_dir: str, adapter_dir: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state dict, config dict)`` of the base with the adapter merged in (float32)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return {k: v.detach().cpu().float().numpy() for k, v in merged.state_dict().items()}, merged.config.to_dict()


_SKIP_KEYS = ("GGUF.", "general.file_type", "general.quantization_version", "general.architecture", "general.name")


def _copy_metadata(writer: Any, template_gguf: str | os.PathLike[str], skip_prefixes: tuple[str, ...]) -> None:
    from gguf import GGUFReader, GGUFValueType

    r = GGUFReader(str(template_gguf))
    for name, f in r.fields.items():
        if name.startswith(_SKIP_KEYS) or name.startswith(skip_prefixes):
            continue
        vtype = f.types[0]
        sub = f.types[1] if vtype == GGUFValueType.ARRAY and len(f.types) > 1 else None
        writer.add_key_value(name, f.contents(), vtype, sub_type=sub)


def write_llama_gguf(
    state: dict[str, np.ndarray],
    config: dict[str, Any],
    out_path: str | os.PathLike[str],
    *,
    template_gguf: str | os.PathLike[str],
    qtype: str = "q8_0",
    name: str = "fastreasonseg",
) -> Path:
    """Write a llama-architecture GGUF from a HF llama state dict, with the tokenizer metadata of ``template_gguf``.

    2-D weights are stored as ``qtype`` (``q8_0``, ``f16`` or ``f32``), norms as F32; q/k rows are permuted.
    """
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    qmap = {"q8_0": GGMLQuantizationType.Q8_0, "f16": GGMLQuantizationType.F16, "f32": GGMLQuantizationType.F32}
    if qtype not in qmap:
        raise InputError(f"merged GGUF type must be one of {sorted(qmap)} (Q4 re-quantisation erases a LoRA)")
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_head)
    hidden = int(config["hidden_size"])
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    w = GGUFWriter(str(tmp), "llama")
    _copy_metadata(w, template_gguf, ("llama.",))
    w.add_string("general.name", name)
    w.add_uint32("llama.context_length", int(config.get("max_position_embeddings", 2048)))
    w.add_uint32("llama.embedding_length", hidden)
    w.add_uint32("llama.block_count", int(config["num_hidden_layers"]))
    w.add_uint32("llama.feed_forward_length", int(config["intermediate_size"]))
    w.add_uint32("llama.attention.head_count", n_head)
    w.add_uint32("llama.attention.head_count_kv", n_kv)
    w.add_uint32("llama.rope.dimension_count", hidden // n_head)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", float(config.get("rms_norm_eps", 1e-5)))
    rope = config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta") or 10000.0
    w.add_float32("llama.rope.freq_base", float(rope))
    w.add_uint32("llama.vocab_size", int(config["vocab_size"]))
    w.add_uint32("general.file_type", {"q8_0": 7, "f16": 1, "f32": 0}[qtype])

    def put(name_: str, t: np.ndarray, quant: bool) -> None:
        t = np.ascontiguousarray(t.astype(np.float32))
        kind = qmap[qtype] if quant and t.ndim == 2 else GGMLQuantizationType.F32
        if kind == GGMLQuantizationType.Q8_0 and t.shape[-1] % 32:
            kind = GGMLQuantizationType.F16
        if kind == GGMLQuantizationType.F32:
            w.add_tensor(name_, t)
        elif kind == GGMLQuantizationType.F16:
            w.add_tensor(name_, t.astype(np.float16))
        else:
            w.add_tensor(name_, quantize(t, kind), raw_dtype=kind)

    put("token_embd.weight", state["model.embed_tokens.weight"], True)
    put("output_norm.weight", state["model.norm.weight"], False)
    if "lm_head.weight" in state and not config.get("tie_word_embeddings", False):
        put("output.weight", state["lm_head.weight"], True)
    for i in range(int(config["num_hidden_layers"])):
        p = f"model.layers.{i}."
        put(f"blk.{i}.attn_norm.weight", state[p + "input_layernorm.weight"], False)
        put(f"blk.{i}.ffn_norm.weight", state[p + "post_attention_layernorm.weight"], False)
        for module, gname in LLAMA_MODULES.items():
            put(f"blk.{i}.{gname}.weight", _llama_rows(module, state[p + module + ".weight"], n_head, n_kv), True)
    return _finish(w, tmp, out)


def _save_float16(src: Path, dst: Path) -> None:
    """Copy a safetensors file with its floating-point tensors stored as float16 (half the size of the float32
    training copy, the same precision as the GGUF LoRA; PEFT casts them back to the model's dtype on load)."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(src))
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(half, str(dst), metadata={"format": "pt"})


def export_adapter(
    adapter_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    base_dir: str | None = None,
    base_gguf: str | os.PathLike[str] | None = None,
    gguf_lora: bool = True,
    merged: str | None = None,
) -> dict[str, str]:
    """Copy the PEFT adapter to ``<output_dir>/peft`` (weights as float16), write ``<output_dir>/adapter.gguf``
    (GGUF LoRA) and, with ``merged``, ``<output_dir>/merged-<type>.gguf``. Returns the written paths."""
    src = Path(adapter_dir)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    peft_out = out / "peft"
    if peft_out.resolve() != src.resolve():
        shutil.rmtree(peft_out, ignore_errors=True)
        peft_out.mkdir(parents=True)
        for name in ("adapter_config.json", "chat_template.jinja"):
            if (src / name).is_file():
                shutil.copy2(src / name, peft_out / name)
        if (src / "adapter_model.safetensors").is_file():
            _save_float16(src / "adapter_model.safetensors", peft_out / "adapter_model.safetensors")
    paths["peft"] = str(peft_out)
    base_config = None
    if base_dir is not None and (Path(base_dir) / "config.json").is_file():
        base_config = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    if gguf_lora:
        paths["gguf_lora"] = str(
            peft_to_gguf_lora(src, out / "adapter.gguf", base_gguf=base_gguf, base_config=base_config)
        )
    if merged:
        if base_dir is None or base_gguf is None:
            raise InputError("a merged GGUF needs the float base directory and the base GGUF (for its tokenizer)")
        state, config = merge_adapter_state_dict(base_dir, str(src))
        paths["merged"] = str(
            write_llama_gguf(state, config, out / f"merged-{merged}.gguf", template_gguf=base_gguf, qtype=merged)
        )
    return paths
