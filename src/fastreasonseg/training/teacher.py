"""Teacher stage: GRPO with LoRA on format + accuracy rewards, on any causal LM (see :mod:`.grpo`)."""

from __future__ import annotations

from typing import Any

from fastreasonseg.training.config import TrainConfig
from fastreasonseg.training.stage import StageResult


def run_teacher(cfg: TrainConfig, **kwargs: Any) -> StageResult:
    """Train the teacher (``cfg.teacher``): reward = format + accuracy (the paper's R_format + R_accuracy)."""
    from fastreasonseg.training.grpo import run_grpo

    return run_grpo(cfg, "teacher", **kwargs)
