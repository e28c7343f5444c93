"""A :class:`~fastreasonseg.reasoning.runtimes.base.Runtime` over an in-memory ``transformers`` model.

GRPO rollouts run through the project's executor (:func:`fastreasonseg.reasoning.executor.run_rollout`) with the
model being trained: this runtime renders the prompt with the same :class:`ChatTemplate` as the inference runtimes,
generates with ``model.generate`` and stops at the executor's stop strings. Grammars are ignored (training samples
freely; the format reward teaches the format).
"""

from __future__ import annotations

import time
from typing import Any

from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion
from fastreasonseg.reasoning.runtimes.template import find_stop


class _TailStop:
    """Stop when the decoded tail of the generated tokens contains a stop string (cheap: no vocabulary scan, unlike
    ``generate(stop_strings=...)`` which preprocesses the whole vocabulary on every call)."""

    def __init__(self, tokenizer: Any, stop: list[str], n_prompt: int, tail: int = 12) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.n_prompt = n_prompt
        self.tail = tail

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new = input_ids[0, self.n_prompt :][-self.tail :].tolist()
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        done = any(s in text for s in self.stop)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class LiveModelRuntime:
    """Continue assistant turns with ``model`` (a transformers or PEFT causal LM) and its tokenizer."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        template: Any,
        *,
        n_ctx: int = 2048,
        top_p: float = 1.0,
        name: str = "live",
        bf16: bool = False,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.n_ctx = n_ctx
        self.top_p = top_p
        self.name = name
        self.bf16 = bf16

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, prompt: ChatPrompt, assistant_prefix: str = "") -> str:
        return self.template.render_text(prompt, assistant_prefix)

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
    ) -> Completion:
        import torch

        t0 = time.perf_counter()
        text = self.render(prompt, assistant_prefix)
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        n_prompt = ids.shape[1]
        max_new = max(1, min(max_tokens, self.n_ctx - n_prompt))
        if seed is not None:
            torch.manual_seed(int(seed))
        model = self.model
        was_training = model.training
        model.eval()
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if stop:
            kwargs["stopping_criteria"] = [_TailStop(self.tokenizer, list(stop), n_prompt)]
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=float(temperature), top_p=self.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        try:
            device = next(model.parameters()).device
            amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)
            with torch.no_grad(), amp:
                out = model.generate(input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device), **kwargs)
        except Exception as exc:
            return Completion(text="", finish_reason="error", error=f"{type(exc).__name__}: {exc}")
        finally:
            if was_training:
                model.train()
        new = out[0, n_prompt:].tolist()
        eos = {self.tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif isinstance(gen_eos, list):
            eos.update(gen_eos)
        hit_eos = False
        for k, t in enumerate(new):
            if t in eos:
                new, hit_eos = new[:k], True
                break
        gen_text = self.tokenizer.decode(new, skip_special_tokens=True)
        finish = "stop" if hit_eos else "length"
        stopped_on = None
        hit = find_stop(gen_text, list(stop))
        if hit is not None:
            gen_text, stopped_on, finish = gen_text[: hit[0]], hit[1], "stop"
        t1 = time.perf_counter()
        return Completion(
            text=gen_text,
            finish_reason=finish,  # type: ignore[arg-type]
            stopped_on=stopped_on,
            prompt_tokens=n_prompt,
            completion_tokens=len(new),
            decode_ms=(t1 - t0) * 1000.0,
        )
