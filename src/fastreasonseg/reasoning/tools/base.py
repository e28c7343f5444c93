"""What every operator of the plan language is made of: its parameters, its context and its result.

An operator (a *tool*) is a typed function over the twin that the executor evaluates exactly (docs/design.md,
"The plan language"). It declares its parameters (:class:`Param`): an object set (``set``, any sub-expression),
a small ordinal (``ordinal``, 1..9), a word from a closed list (``choice``), one name (``text``, a phrase for the
detector) or candidate names (``names``, ``cup|mug``). The grammar, the system prompt's operator list, the format
reward and the synthetic generator are all derived from these declarations
(:class:`~fastreasonseg.reasoning.tools.ToolRegistry`), so a new operator is a new file in this package with one
``TOOL = Tool(...)`` in it.

Every operator returns a :class:`Selection` (ids in a stable order, plus the facts it used) or raises
:class:`ToolError` with a message for the model; the executor never lets any other exception out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from fastreasonseg.reasoning.grounding import NameMatcher
    from fastreasonseg.reasoning.tools.scene import Scene
    from fastreasonseg.twin.schema import DigitalTwin

ParamKind = Literal["set", "ordinal", "choice", "text", "names"]


class ToolError(Exception):
    """An operator cannot do what it was asked; the message goes back to the model inside ``<results>``."""


@dataclass(frozen=True)
class Param:
    """One parameter of an operator."""

    name: str
    kind: ParamKind
    optional: bool = False
    choices: tuple[str, ...] = ()
    """The allowed words of a ``choice`` parameter."""

    def signature(self) -> str:
        if self.kind == "choice":
            s = self.name
        elif self.kind == "ordinal":
            s = "k"
        elif self.kind == "text":
            s = "name"
        elif self.kind == "names":
            s = "name|name"
        else:
            s = self.name
        return f"[{s}]" if self.optional else s


SET = Param("A", "set")
ANCHOR = Param("B", "set")
ORDINAL = Param("k", "ordinal", optional=True)


@dataclass(frozen=True)
class Selection:
    """The value of an expression: object ids (track ids) and what decided them."""

    ids: tuple[int, ...]
    why: str = ""
    """The facts used, for ``<results>`` (short: the model reads it back)."""

    @staticmethod
    def of(ids: Sequence[int], why: str = "") -> Selection:
        return Selection(tuple(dict.fromkeys(int(i) for i in ids)), why)


class PerceptionLike(Protocol):
    """What ``detect``/``relabel`` need from perception (``fastreasonseg.perception.pipeline.Perception``)."""

    def detect(self, image: np.ndarray, phrases: Sequence[str], threshold: float) -> list[tuple[Any, Any, Any]]:
        """``[(Detection, bool mask (H, W), DepthStats | None)]`` for the phrases found in ``image``."""
        ...

    def classify(
        self, image: np.ndarray, boxes: Sequence[Any], candidates: Sequence[str]
    ) -> list[list[tuple[str, float]]]:
        """For each box, the candidates with scores, best first."""
        ...


@dataclass
class ToolContext:
    """What the operators work on.

    ``twin`` is the working copy the refinement operators (``detect``, ``relabel``) change: the executor copies
    the caller's twin, which is never mutated. ``frames`` maps frame index -> ``(H, W, 3)`` uint8 RGB image and
    ``perception`` is the ``Perception`` facade: both optional (a twin loaded from JSON has neither; the operators
    that need them say so). ``matcher`` grounds names to objects (:mod:`fastreasonseg.reasoning.grounding`);
    the executor fills it in. ``slack`` scales every geometric tolerance (1.0 = the documented definitions; the
    synthetic generator evaluates gold plans at two slacks to skip borderline questions).
    """

    twin: DigitalTwin | None = None  # type: ignore[assignment]  # set by the executor (a working copy)
    frames: Mapping[int, np.ndarray] | None = None
    perception: PerceptionLike | None = None
    matcher: NameMatcher | None = None
    detect_threshold: float = 0.15
    """Score threshold of ``detect``."""
    overlap_iou: float = 0.5
    """``detect``: a detection whose mask overlaps an existing instance this much relabels it."""
    max_detect_frames: int = 8
    """``detect`` on a video runs on at most this many frames (evenly spaced) that have an image."""
    slack: float = 1.0
    log: list[str] = field(default_factory=list)
    """What the operators changed in the twin (human-readable, for diagnostics)."""
    _scene: Scene | None = field(default=None, repr=False)

    def image(self, frame_index: int) -> np.ndarray | None:
        if not self.frames:
            return None
        img = self.frames.get(frame_index)
        return None if img is None else np.asarray(img)

    @property
    def scene(self) -> Scene:
        """The twin's objects with their geometry (rebuilt after a refinement changed the twin)."""
        from fastreasonseg.reasoning.tools.scene import Scene

        if self._scene is None:
            self._scene = Scene(self.twin)
        return self._scene

    def changed(self) -> None:
        """Call after changing ``twin``: the cached geometry and name index are rebuilt on next use."""
        self._scene = None
        if self.matcher is not None:
            self.matcher.reset()


Runner = Callable[..., Selection]
"""``run(ctx, *values) -> Selection``: one value per declared parameter (a Selection for ``set``, an int for
``ordinal`` (``None`` when left out), a str for ``choice`` / ``text`` / ``names``)."""


@dataclass(frozen=True)
class Tool:
    """A registered operator."""

    name: str
    params: tuple[Param, ...]
    run: Runner
    summary: str
    video_only: bool = False
    image_only: bool = False
    variadic: bool = False
    """The last ``set`` parameter may repeat (``union(A, B, C)``), up to :data:`MAX_VARIADIC` values."""
    rewrite: Callable[[ToolContext, tuple], Any] | None = None
    """``rewrite(ctx, args)``: another call (a ``program.Call``) that means what this one says, or ``None``;
    run before the arguments are evaluated (``closest_to(A, camera)`` is ``nearest(A)``)."""

    def signature(self) -> str:
        """``name(A, B, [k])`` as the prompt lists it (an optional parameter in brackets)."""
        req = [p.signature() for p in self.params if not p.optional]
        opt = [p.signature() for p in self.params if p.optional]
        s = ", ".join(req)
        if self.variadic:
            s += ", ..."
        if opt:
            s += "".join(f", {o}" for o in opt)
        return f"{self.name}({s})"

    def describe(self) -> str:
        return f"{self.signature()}: {self.summary}"


MAX_VARIADIC = 4
