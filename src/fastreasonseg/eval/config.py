"""What an evaluation run evaluates: :class:`EvalConfig`, the one settings object of :func:`~.runner.run_eval`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fastreasonseg.errors import InputError
from fastreasonseg.eval.predictors import EMBEDDING_THRESHOLD, PREDICTORS

if TYPE_CHECKING:  # not imported at run time: importing the reasoning package costs what a synthetic run does not need
    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.reasoning.config import ReasonerConfig

TWIN_SOURCES = ("oracle", "perception")
IDENTITY_FIELDS = ("dataset", "split", "predictor", "twins", "reasoner", "adapter", "stride", "max_frames")
"""The fields that make two runs different runs: a folder holding one refuses to resume as the other."""

__all__ = ["IDENTITY_FIELDS", "TWIN_SOURCES", "EvalConfig"]


@dataclass
class EvalConfig:
    """What to evaluate, and how. Written to ``run.json`` and to the summary's ``config``.

    >>> EvalConfig("devset", "../shared/devset", predictor="embedding")  # doctest: +SKIP
    """

    dataset: str
    """A dataset name of :func:`~fastreasonseg.data.base.open_dataset`: ``synthetic``, ``devset``, ``reasonseg``,
    ``llmseg40k``, ``refcocog``, ``revos``, ``mevis``, ``davis``."""
    root: str | os.PathLike
    """The dataset's root folder (synthetic: a folder with ``<split>.jsonl``, or the file itself); kept as a string."""
    split: str = "test"
    predictor: str = "oracle"
    """``reasoner``, ``embedding`` or ``oracle`` (:mod:`fastreasonseg.eval.predictors`); the name recorded for a
    predictor object passed to ``run_eval``."""
    reasoner: str | None = None
    """Reasoner spec or alias (``predictor="reasoner"``; default: the shipped student, or the zero-shot base when
    ``adapter`` is set; :func:`fastreasonseg.api.resolve_reasoner_spec`)."""
    adapter: str | None = None
    reasoner_config: ReasonerConfig | None = None
    """The executor's knobs for ``predictor="reasoner"`` (``None`` = :class:`ReasonerConfig` defaults)."""
    twins: str = "oracle"
    """``oracle`` (twin datasets: their own twins; real datasets: the ground-truth target alone) or ``perception``
    (built from the pixels; real datasets only)."""
    perception: PerceptionConfig | None = None
    """Models for ``twins="perception"`` (``None`` = :class:`PerceptionConfig` defaults); ``stride`` and
    ``max_frames`` below override its own."""
    stride: int = 1
    """Videos of real datasets: score (and perceive) every ``stride``-th frame."""
    max_frames: int | None = None
    limit: int | None = None
    """Evaluate only the first ``limit`` items (queries) of the split, in order."""
    embedding_threshold: float = EMBEDDING_THRESHOLD
    dataset_options: dict[str, Any] = field(default_factory=dict)
    """Keyword options of the dataset reader (e.g. ``images=`` for RefCOCOg / LLM-Seg40K)."""

    def __post_init__(self) -> None:
        self.root = str(self.root)  # a Path is accepted; run.json and the summary record a string

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in IDENTITY_FIELDS}

    def check(self, *, named_predictor: bool = True) -> None:
        """Raise :class:`InputError` for a value no run can use (``named_predictor``: ``predictor`` must be known)."""
        if named_predictor and self.predictor.strip().lower() not in PREDICTORS:
            raise InputError(f"unknown predictor {self.predictor!r}; choose one of {', '.join(PREDICTORS)}")
        if self.twins not in TWIN_SOURCES:
            raise InputError(f"twins must be one of {', '.join(TWIN_SOURCES)}, got {self.twins!r}")
        if self.stride < 1:
            raise InputError(f"stride must be >= 1, got {self.stride}")
        if self.limit is not None and self.limit < 0:
            raise InputError(f"limit must be >= 0, got {self.limit}")
