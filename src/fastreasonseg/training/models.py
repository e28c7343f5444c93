"""Loading the causal LM to train, its tokenizer and the chat template shared with the inference runtimes.

A GGUF base (``smollm2`` or any ``.gguf``) is dequantised by ``transformers`` (``gguf_file=``). Such a model cannot be
``save_pretrained`` as is (its config keeps a GGUF ``quantization_config``; docs/design.md §6), and dequantising
takes ~14 s, so the first load writes a plain float32 copy — config without the quantization config, the state dict
loaded into a fresh model, the tokenizer and its chat template — to a cache directory, and later loads read that copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastreasonseg.errors import InputError, ModelLoadError
from fastreasonseg.training.config import SMOLLM2, LoraSettings, ModelSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaseRef:
    """Where a base model lives: a transformers-loadable ``path`` (dir or hub id) and, for GGUF bases, the file."""

    path: str
    gguf: Path | None = None


def resolve_base(settings: ModelSettings) -> BaseRef:
    base = settings.base
    if base == SMOLLM2:
        from fastreasonseg.assets import smollm2_gguf_path

        return BaseRef(str(smollm2_gguf_path().parent), smollm2_gguf_path())
    if settings.gguf_file:
        return BaseRef(base, Path(base) / settings.gguf_file)
    if base.lower().endswith(".gguf"):
        p = Path(base).expanduser()
        if not p.is_file():
            raise ModelLoadError("training", base, "no such GGUF file")
        return BaseRef(str(p.parent), p)
    return BaseRef(base)


def gguf_base_path(settings: ModelSettings) -> Path | None:
    """The GGUF an exported LoRA targets (``model.gguf_base``, else the base itself when it is a GGUF)."""
    if settings.gguf_base:
        return Path(settings.gguf_base).expanduser()
    ref = resolve_base(settings)
    return ref.gguf


def _default_cache() -> Path:
    root = os.environ.get("FASTREASONSEG_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "fastreasonseg")
    return Path(root) / "dequantised"


def _gguf_key(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:10]
    return f"{path.stem}-{h}"


def dequantised_dir(gguf: Path, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A plain (float32, ``save_pretrained``) copy of a GGUF model, written once and reused."""
    root = Path(cache_dir).expanduser() if cache_dir else _default_cache()
    out = root / _gguf_key(gguf)
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("dequantising %s into %s (once)", gguf, out)
    folder, name = str(gguf.parent), gguf.name
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:
        raise ModelLoadError("training", str(gguf), f"transformers could not load the GGUF ({exc})") from exc
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    missing = [m for m in missing if "lm_head" not in m]  # tied embeddings
    if missing or unexpected:
        raise ModelLoadError("training", str(gguf), f"dequantised weights do not fit: {missing[:3]} {unexpected[:3]}")
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "SOURCE.txt").write_text(f"dequantised from {gguf}\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def model_dir(settings: ModelSettings) -> str:
    """A transformers-loadable path for ``settings.base`` (dequantised copy for a GGUF)."""
    ref = resolve_base(settings)
    if ref.gguf is not None:
        return str(dequantised_dir(ref.gguf, settings.cache_dir))
    return ref.path


def torch_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise InputError(f"unknown dtype {name!r} (float32, bfloat16, float16, auto)") from None


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str, dtype: str = "auto", adapter: str | None = None, trainable: bool = True) -> Any:
    """The causal LM at ``path``, with a PEFT adapter loaded on top when given (trainable or frozen)."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype))
    except Exception as exc:
        raise ModelLoadError("training", path, f"could not load the model ({exc})") from exc
    if adapter:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelLoadError("training", adapter, "not a PEFT adapter directory (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
    return model


def lora_config(settings: LoraSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        layers_to_transform=list(settings.layers) if settings.layers else None,
        layers_pattern="layers" if settings.layers else None,
    )


def chat_template_source(tokenizer: Any, settings: ModelSettings) -> str:
    """The Jinja2 template used for training prompts: the override, else the tokenizer's (which for a GGUF base is
    the GGUF's ``tokenizer.chat_template``, the one llama.cpp renders)."""
    if settings.chat_template:
        p = Path(settings.chat_template)
        return p.read_text(encoding="utf-8") if p.is_file() else settings.chat_template
    src = getattr(tokenizer, "chat_template", None)
    if isinstance(src, dict):
        src = src.get("default")
    if not src:
        from fastreasonseg.reasoning.runtimes.template import CHATML_TEMPLATE

        log.warning("the tokenizer has no chat template: training with plain ChatML (give the runtime the same)")
        return CHATML_TEMPLATE
    return src


def chat_template(tokenizer: Any, settings: ModelSettings) -> Any:
    from fastreasonseg.reasoning.runtimes.template import ChatTemplate

    return ChatTemplate(
        chat_template_source(tokenizer, settings),
        bos_token=tokenizer.bos_token or "",
        eos_token=tokenizer.eos_token or "",
    )
