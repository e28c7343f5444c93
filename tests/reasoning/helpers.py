"""Hand-built twins and a scripted runtime (a test double for the LLM) shared by the reasoning tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion
from fastreasonseg.twin import DigitalTwin, Frame, Instance, Source


def disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def rect(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


H, W = 120, 160


def image_twin() -> DigitalTwin:
    """1 mug (left, near, red in ``image_rgb``), 2 table (bottom), 7 person (right, far), 9 apple on the table."""
    depth = np.tile(np.linspace(0.0, 1.0, H)[:, None], (1, W))[::-1].copy()  # bottom rows nearest
    depth[:, 100:] = 0.9  # the right side is far
    insts = [
        Instance.from_mask(1, "mug", disk(H, W, 70, 30, 12), score=0.81, alt_labels=[("cup", 0.7)], depth_map=depth),
        Instance.from_mask(2, "table", rect(H, W, 80, 0, 120, 160), score=0.6, depth_map=depth),
        Instance.from_mask(7, "person", rect(H, W, 5, 110, 100, 150), score=0.93, depth_map=depth),
        Instance.from_mask(9, "apple", disk(H, W, 95, 60, 6), score=0.5, depth_map=depth),
    ]
    twin = DigitalTwin(
        source=Source(kind="image", name="hand.png", width=W, height=H), frames=[Frame(index=0, instances=insts)]
    )
    twin.validate_all()
    return twin


def image_rgb() -> np.ndarray:
    img = np.full((H, W, 3), 128, np.uint8)
    img[disk(H, W, 70, 30, 12)] = (200, 20, 20)  # red mug
    img[rect(H, W, 5, 110, 100, 150)] = (20, 40, 200)  # blue person
    return img


def video_twin(frames: int = 5) -> DigitalTwin:
    """3 car moving right and approaching; 4 tree standing still on the right, far."""
    h, w = 60, 100
    out = []
    for k in range(frames):
        depth = np.full((h, w), 0.9)
        depth[:, :60] = 0.8 - 0.15 * k
        insts = [
            Instance.from_mask(3, "car", disk(h, w, 30, 10 + 10 * k, 6), score=0.9, depth_map=depth),
            Instance.from_mask(4, "tree", rect(h, w, 5, 80, 55, 95), score=0.7, depth_map=depth),
        ]
        out.append(Frame(index=k, time=k / 5.0, instances=insts))
    twin = DigitalTwin(
        source=Source(kind="video", name="road.mp4", width=w, height=h, fps=5.0, num_frames=frames), frames=out
    )
    twin.validate_all()
    return twin


def empty_twin() -> DigitalTwin:
    return DigitalTwin(source=Source(kind="image", name="empty.png", width=W, height=H), frames=[Frame(index=0)])


def many_twin(n: int = 300) -> DigitalTwin:
    h, w = 200, 300
    insts = []
    for k in range(n):
        y, x = divmod(k, 20)
        size = 2 + (k % 7)
        insts.append(
            Instance.from_mask(k + 1, f"thing{k % 13}", rect(h, w, y * 13, x * 15, y * 13 + size, x * 15 + size))
        )
    return DigitalTwin(
        source=Source(kind="image", name="many.png", width=w, height=h), frames=[Frame(index=0, instances=insts)]
    )


@dataclass
class Call:
    prompt: ChatPrompt
    prefix: str
    stop: list[str]
    max_tokens: int
    grammar: str | None


@dataclass
class ScriptedRuntime:
    """Returns pre-written continuations in order, honouring stop strings and ``max_tokens`` (1 token per 4 chars).

    A script entry is either text (stopped at the first stop string, or cut at ``max_tokens``) or a
    :class:`Completion` returned as is.
    """

    script: list
    name: str = "scripted"
    calls: list[Call] = field(default_factory=list)
    n_ctx: int = 2048

    def complete(self, prompt, assistant_prefix, *, stop, max_tokens, grammar=None, temperature=0.0, seed=None):
        self.calls.append(Call(prompt, assistant_prefix, list(stop), max_tokens, grammar))
        if not self.script:
            return Completion(text="", finish_reason="stop", prompt_tokens=10)
        item = self.script.pop(0)
        if isinstance(item, Completion):
            return item
        text, reason, on = item, "stop", None
        cut = [(text.find(s), s) for s in stop if s in text]
        if cut:
            k, on = min(cut)
            text = text[: k + len(on)]
        if len(text) > 4 * max_tokens:
            text, reason, on = text[: 4 * max_tokens], "length", None
        toks = (len(text) + 3) // 4
        cached = 0 if not self.calls[:-1] else 100
        return Completion(
            text=text,
            finish_reason=reason,
            stopped_on=on,
            prompt_tokens=120,
            cached_tokens=cached,
            completion_tokens=toks,
            prefill_ms=1.0,
            decode_ms=2.0 * toks,
        )

    def count_tokens(self, text: str) -> int:
        return (len(text) + 2) // 3
