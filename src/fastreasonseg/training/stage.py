"""The scaffolding every training stage shares: TRL's config from the stage's settings, the model to train, and
resume → train → save the adapter → write the run info.

A stage (:mod:`.sft`, :mod:`.grpo`) builds its dataset and its TRL trainer; :func:`train_stage` does the rest the same
way for all of them, so resuming, the final adapter (``<output_dir>/final``) and ``<output_dir>/<stage>_info.json``
never differ between stages.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastreasonseg.errors import InputError
from fastreasonseg.training.common import (
    ModelBundle,
    last_checkpoint,
    resume_message,
    save_final_adapter,
    trainer_args,
    write_run_info,
)
from fastreasonseg.training.config import TrainConfig, trl_fields

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    """What a training stage produced."""

    output_dir: Path
    adapter_dir: Path
    global_step: int
    resumed_from: str | None
    train_seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)


def trl_args(trl_class: type, settings: Any, cfg: TrainConfig, section: str, **stage_args: Any) -> Any:
    """``trl_class`` (``trl.SFTConfig`` / ``trl.GRPOConfig``) from a stage's settings (``cfg.sft``, ``cfg.rl``...).

    In order, later ones winning: the TRL fields the settings name (:func:`~.config.trl_fields`), the project's
    choices every stage shares (:func:`~.common.trainer_args`: checkpoints by steps, no reporting, device,
    precision), the stage's own (``stage_args``, e.g. ``completion_only_loss=True``), and the settings' ``trl``
    mapping. A ``trl`` key that is not a field of ``trl_class``, or that a setting of ``section`` already sets, is an
    :class:`~fastreasonseg.errors.InputError`.
    """
    known = {f.name for f in dataclasses.fields(trl_class)}
    named = trl_fields(settings)
    extra = dict(getattr(settings, "trl", None) or {})
    unknown = sorted(set(extra) - known)
    if unknown:
        raise InputError(f"{section}.trl: {', '.join(unknown)} are not fields of trl.{trl_class.__name__}")
    setting_of = {f.metadata.get("trl", f.name): f.name for f in dataclasses.fields(settings)}
    clash = [f"{section}.{setting_of[k]}" for k in sorted(set(extra) & set(named))]
    if clash:
        raise InputError(f"{section}.trl sets what a setting sets: use {', '.join(clash)} instead")
    kwargs = {**named, **trainer_args(settings, cfg), **stage_args, **extra}
    stale = sorted(set(kwargs) - known)
    if stale:  # a TRL release renamed a field the settings name: say which, rather than a TypeError
        raise InputError(f"trl.{trl_class.__name__} has no field {', '.join(stale)} (this TRL version renamed it)")
    return trl_class(**kwargs)


def stage_model(cfg: TrainConfig, bundle: ModelBundle, init_adapter: str | None) -> tuple[Any, Any]:
    """The model to train and the LoRA config for the trainer: ``init_adapter`` loaded trainable (its own LoRA shape;
    no new LoRA), else the base with a fresh LoRA from ``cfg.lora``."""
    from fastreasonseg.training.models import load_model, lora_config

    model = load_model(bundle.path, cfg.model.dtype, adapter=init_adapter, trainable=True)
    return model, None if init_adapter else lora_config(cfg.lora)


def train_stage(
    trainer: Any,
    *,
    stage: str,
    label: str,
    settings: Any,
    cfg: TrainConfig,
    bundle: ModelBundle,
    init_adapter: str | None,
    metrics: Callable[[Any], dict[str, Any]] | None = None,
) -> StageResult:
    """Resume ``trainer`` from the newest checkpoint of ``settings.output_dir`` (when ``settings.resume``), train,
    save the adapter to ``<output_dir>/final``, then ``metrics(trainer)`` (the stage's own numbers, computed after the
    save) and write ``<output_dir>/<stage>_info.json`` with the config."""
    resume = last_checkpoint(settings.output_dir) if settings.resume else None
    if resume:
        msg, warn = resume_message(resume, trainer.args.max_steps, label)
        (log.warning if warn else log.info)(msg)
    t0 = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - t0
    final = save_final_adapter(trainer.model, bundle.tokenizer, bundle.template.source, settings.output_dir)
    result: dict[str, Any] = dict(out.metrics)
    if metrics is not None:
        result.update(metrics(trainer))
    step = trainer.state.global_step
    info = {"global_step": step, "resumed_from": resume, "init_adapter": init_adapter, "train_seconds": seconds}
    write_run_info(settings.output_dir, stage, {**info, **result}, cfg)
    return StageResult(Path(settings.output_dir), final, step, resume, seconds, result)
