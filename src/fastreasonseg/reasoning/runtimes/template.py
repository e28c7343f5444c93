"""Chat-template rendering and stop-string handling shared by every runtime.

All runtimes render the *same* text for the same :class:`ChatPrompt` and assistant prefix: the model's own
Jinja2 chat template (from the GGUF metadata ``tokenizer.chat_template``, the tokenizer's ``chat_template``, or one
given explicitly), rendered with ``add_generation_prompt=True``, followed by the assistant prefix so that the model
continues its own turn. The environment mirrors the one ``transformers`` and ``llama-cpp-python`` use (sandboxed,
``trim_blocks`` and ``lstrip_blocks``, ``raise_exception`` and ``strftime_now`` available), so a template renders the
same here as in those libraries.

The rendered text is split into ``head + user + tail``: everything up to the user's content (system turn and the
user-turn header), the user content, and everything after it (end of the user turn, the assistant header, the
assistant prefix). Runtimes use ``head + cache_prefix`` — typically the system prompt and the twin view, which come
first — as the prompt prefix they keep evaluated between questions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt

_SENTINEL = "\x00FRS-USER-CONTENT\x00"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""Plain ChatML, used only when a model ships no template at all (and said so in a warning by the caller)."""


def _raise_exception(message: str) -> None:
    raise InputError(f"chat template error: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def _compile(source: str) -> Any:
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as exc:  # pragma: no cover - jinja2 ships with transformers
        raise InputError("rendering chat templates needs jinja2 (`pip install jinja2`)") from exc
    from jinja2 import TemplateError

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = _tojson
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise InputError(f"invalid chat template: {exc}") from exc


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys=False):
    import json

    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@dataclass(frozen=True)
class RenderedPrompt:
    """A chat prompt rendered as text, split around the user content."""

    head: str
    """Everything before the user's content (system turn, user-turn header)."""
    user: str
    tail: str
    """Everything after the user's content: end of the user turn, assistant header and the assistant prefix."""

    @property
    def text(self) -> str:
        return self.head + self.user + self.tail

    def prefix_text(self, cache_prefix: str | None) -> str:
        """``head`` plus the leading part of the user content shared between questions (``cache_prefix``)."""
        if cache_prefix and self.user.startswith(cache_prefix):
            return self.head + cache_prefix
        return self.head


def prompt_tokens(tokenize: Any, rendered: RenderedPrompt, assistant_prefix: str) -> list[int]:
    """The tokens of a rendered prompt where only the template's own markup may become special tokens: the user
    content (twin view + question) and the assistant turn so far (tool results quote twin labels) are tokenized as
    plain text, so a label holding ``<|im_start|>`` stays text. ``tokenize(text, special=...)`` is the runtime's
    tokenizer. (A template that rewrites the content renders unsplit: all of it is parsed.)"""
    markup = rendered.tail[: len(rendered.tail) - len(assistant_prefix)]
    return [
        *tokenize(rendered.head),
        *tokenize(rendered.user, special=False),
        *tokenize(markup),
        *tokenize(assistant_prefix, special=False),
    ]


class ChatTemplate:
    """A Jinja2 chat template with the special tokens it may reference.

    >>> t = ChatTemplate(CHATML_TEMPLATE)
    >>> t.render(ChatPrompt(system="S", user="Q"), "<reason>").text
    '<|im_start|>system\\nS<|im_end|>\\n<|im_start|>user\\nQ<|im_end|>\\n<|im_start|>assistant\\n<reason>'
    """

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "", **extra: Any) -> None:
        if not source or not source.strip():
            raise InputError("empty chat template")
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.extra = dict(extra)
        self._template = _compile(source)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha1(self.source.encode("utf-8")).hexdigest()[:12]

    def _render_messages(self, messages: list[dict[str, str]]) -> str:
        from jinja2 import TemplateError

        try:
            return self._template.render(
                messages=messages,
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                tools=None,
                **self.extra,
            )
        except TemplateError as exc:
            raise InputError(f"chat template failed to render: {exc}") from exc

    def render(self, prompt: ChatPrompt, assistant_prefix: str = "") -> RenderedPrompt:
        """Render ``prompt`` with the generation prompt, then append ``assistant_prefix`` (the turn so far)."""
        messages = []
        if prompt.system:
            messages.append({"role": "system", "content": prompt.system})
        messages.append({"role": "user", "content": _SENTINEL})
        rendered = self._render_messages(messages)
        if rendered.count(_SENTINEL) != 1:
            # Templates that transform the content (strip, truncate) cannot be split: render for real.
            messages[-1]["content"] = prompt.user
            full = self._render_messages(messages)
            return RenderedPrompt(head="", user="", tail=full + assistant_prefix)
        head, tail = rendered.split(_SENTINEL)
        return RenderedPrompt(head=head, user=prompt.user, tail=tail + assistant_prefix)

    def render_text(self, prompt: ChatPrompt, assistant_prefix: str = "") -> str:
        return self.render(prompt, assistant_prefix).text


def find_stop(text: str, stop: list[str], start: int = 0) -> tuple[int, str] | None:
    """Earliest stop string in ``text[start:]``: ``(end index just after it, the stop string)`` or ``None``."""
    best: tuple[int, str] | None = None
    for s in stop:
        if not s:
            continue
        i = text.find(s, start)
        if i >= 0 and (best is None or i + len(s) < best[0] or (i + len(s) == best[0] and len(s) > len(best[1]))):
            best = (i + len(s), s)
    return best


class StopScanner:
    """Incremental stop-string detection over decoded text.

    ``feed(new_text)`` returns the stop string once the accumulated text contains one; the text up to and including
    the stop string is then in :attr:`text` (anything generated after it is dropped).
    """

    def __init__(self, stop: list[str]) -> None:
        self.stop = [s for s in stop if s]
        self._longest = max((len(s) for s in self.stop), default=0)
        self.text = ""
        self.stopped_on: str | None = None

    def feed(self, piece: str) -> str | None:
        if self.stopped_on is not None:
            return self.stopped_on
        start = max(0, len(self.text) - self._longest + 1)
        self.text += piece
        hit = find_stop(self.text, self.stop, start)
        if hit is not None:
            end, s = hit
            self.text = self.text[:end]
            self.stopped_on = s
        return self.stopped_on


def common_prefix_len(a, b) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    # Compare in blocks first: prompts are long and usually share most of their tokens.
    step = 64
    while i + step <= n and list(a[i : i + step]) == list(b[i : i + step]):
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return i
