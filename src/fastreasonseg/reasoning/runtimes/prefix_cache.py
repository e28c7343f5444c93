"""A small LRU of evaluated prompt prefixes (model state snapshots), keyed by their tokens.

Build once, ask many: the system prompt and the twin view come first in every prompt, so questions about the same
twin share a long token prefix. A runtime keeps its *live* state (the tokens it evaluated last) and reuses the longest
common prefix with the next prompt by itself; this cache adds snapshots of earlier prefixes so that questions that
alternate between twins each find their own twin already evaluated.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from fastreasonseg.reasoning.runtimes.template import RenderedPrompt, common_prefix_len

S = TypeVar("S")


def tokens_key(tokens: Sequence[int]) -> str:
    """A stable hash of a token sequence."""
    h = hashlib.blake2b(digest_size=16)
    h.update(",".join(map(str, tokens)).encode("ascii"))
    return h.hexdigest()


@dataclass
class _Entry(Generic[S]):
    tokens: tuple[int, ...]
    state: S
    nbytes: int


class PrefixStateCache(Generic[S]):
    """LRU of ``(prefix tokens, state)`` snapshots; ``capacity`` entries (0 disables it)."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = max(0, int(capacity))
        self._entries: OrderedDict[str, _Entry[S]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tokens: Sequence[int]) -> bool:
        return tokens_key(tokens) in self._entries

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def put(self, tokens: Sequence[int], state: S, nbytes: int = 0) -> None:
        if self.capacity == 0 or not tokens:
            return
        key = tokens_key(tokens)
        self._entries[key] = _Entry(tuple(tokens), state, nbytes)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def best(self, tokens: Sequence[int]) -> tuple[int, S | None]:
        """The snapshot sharing the longest prefix with ``tokens``: ``(usable length, state)``.

        A snapshot is usable only if all of its tokens are a prefix of ``tokens`` (its state holds nothing else).
        """
        best_len, best_key = 0, None
        for key, entry in self._entries.items():
            n = len(entry.tokens)
            if n > best_len and n <= len(tokens) and common_prefix_len(entry.tokens, tokens) == n:
                best_len, best_key = n, key
        if best_key is None:
            self.misses += 1
            return 0, None
        self.hits += 1
        self._entries.move_to_end(best_key)
        return best_len, self._entries[best_key].state

    def clear(self) -> None:
        self._entries.clear()

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "bytes": self.nbytes, "hits": self.hits, "misses": self.misses}


def snapshot_boundary(
    rendered: RenderedPrompt, previous: RenderedPrompt | None, cache_prefix: str | None
) -> str | None:
    """Text of the prompt prefix worth a snapshot: the system prompt plus ``cache_prefix`` (the twin view) when the
    caller names it, else the head of the user message shared with the ``previous`` prompt, cut at a line break."""
    if not rendered.user:
        return None
    if cache_prefix:
        return rendered.prefix_text(cache_prefix) if rendered.user.startswith(cache_prefix) else None
    if previous is None or previous.head != rendered.head or previous.user == rendered.user:
        return None
    n = common_prefix_len(previous.user, rendered.user)
    cut = rendered.user.rfind("\n", 0, n) + 1
    return rendered.head + rendered.user[:cut] if cut > 0 else None


class DiskStateStore:
    """Evaluated system prompts kept on disk, so a fresh process prefills only the twin view and the question.

    One file per (model, adapter, context settings, prompt-head tokens): ``<key>.state`` holds the KV state of
    sequence 0 after the head, with a small header (magic, token count). The key hashes the model and adapter
    files' paths, sizes and modification times, the llama.cpp version and the tokens, so a changed model or
    prompt gets a new file. Files are written atomically; an unreadable or mismatched file is ignored (and
    replaced), never trusted.
    """

    MAGIC = b"FRSKV1\n"

    def __init__(self, directory: str | os.PathLike[str], identity: Sequence[Any]) -> None:
        self.dir = Path(directory).expanduser()
        self.identity = "|".join(map(str, identity))
        self.loaded = 0
        self.saved = 0
        self.errors: list[str] = []

    def path(self, tokens: Sequence[int]) -> Path:
        h = hashlib.blake2b(digest_size=16)
        h.update(self.identity.encode("utf-8"))
        h.update(tokens_key(tokens).encode("ascii"))
        return self.dir / f"{h.hexdigest()}.state"

    def load(self, tokens: Sequence[int]) -> bytes | None:
        p = self.path(tokens)
        try:
            raw = p.read_bytes()
        except OSError:
            return None
        head = self.MAGIC + str(len(tokens)).encode("ascii") + b"\n"
        if not raw.startswith(head):
            self.errors.append(f"ignored a state file that does not match ({p.name})")
            return None
        self.loaded += 1
        return raw[len(head) :]

    def save(self, tokens: Sequence[int], data: bytes) -> None:
        p = self.path(tokens)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(self.MAGIC + str(len(tokens)).encode("ascii") + b"\n" + data)
            os.replace(tmp, p)
            self.saved += 1
        except OSError as exc:  # a read-only cache dir only costs speed
            self.errors.append(f"could not write the prompt state cache ({exc.strerror or exc})")
