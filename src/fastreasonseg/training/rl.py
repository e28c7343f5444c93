"""Student stage 2: GRPO with the joint reward format + accuracy + γ·reasoning, warm-started from the SFT adapter.

GRPO from the base model gets zero reward everywhere (docs/design.md §6), so ``rl.init_adapter`` defaults to
``<sft.output_dir>/final``. The reasoning judge compares the student's chain with the teacher's chain of the same
sample: the chains file (``data.chains`` / ``chains.output``) when it exists, else the sample's reference rollout.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastreasonseg.training.config import TrainConfig
from fastreasonseg.training.stage import StageResult

log = logging.getLogger(__name__)


def teacher_references(cfg: TrainConfig) -> dict[str, str]:
    """``{sample id: best teacher chain}`` from the chains file, or ``{}`` when there is none."""
    from fastreasonseg.training.data import read_chains

    path = Path(cfg.data.chains or cfg.chains.output)
    if not path.is_file():
        return {}
    best: dict[str, tuple[float, str]] = {}
    for c in read_chains(path):
        if c.sample_id not in best or c.iou > best[c.sample_id][0]:
            best[c.sample_id] = (c.iou, c.rollout)
    return {k: v[1] for k, v in best.items()}


def run_rl(cfg: TrainConfig, **kwargs: Any) -> StageResult:
    from fastreasonseg.training.grpo import run_grpo

    if "references" not in kwargs:
        kwargs["references"] = teacher_references(cfg)
    return run_grpo(cfg, "rl", **kwargs)
