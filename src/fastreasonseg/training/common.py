"""Pieces shared by the training stages: the model bundle, checkpoints, run metadata, format-rate probes."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastreasonseg.training.config import TrainConfig, save_config

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    """Tokenizer, chat template and the transformers-loadable base path of a config's model."""

    path: str
    tokenizer: Any
    template: Any


def model_bundle(cfg: TrainConfig) -> ModelBundle:
    from fastreasonseg.training.models import chat_template, load_tokenizer, model_dir

    path = model_dir(cfg.model)
    tok = load_tokenizer(path)
    return ModelBundle(path, tok, chat_template(tok, cfg.model))


def config_samples(cfg: TrainConfig) -> list[Any]:
    """The training samples ``cfg.data`` names (split, ``skip``, seeded ``limit``)."""
    from fastreasonseg.training.data import load_samples

    d = cfg.data
    return load_samples(d.samples, d.split, limit=d.limit, seed=d.seed, skip=d.skip)


def last_checkpoint(output_dir: str | os.PathLike[str]) -> str | None:
    """The newest ``checkpoint-N`` directory with a trainer state, or ``None``."""
    d = Path(output_dir)
    if not d.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for c in d.glob("checkpoint-*"):
        try:
            step = int(c.name.split("-")[-1])
        except ValueError:
            continue
        if (c / "trainer_state.json").is_file() and (best is None or step > best[0]):
            best = (step, c)
    return str(best[1]) if best else None


def resume_message(checkpoint: str | os.PathLike[str], max_steps: int, stage: str) -> tuple[str, bool]:
    """What resuming ``stage`` from ``checkpoint`` with ``max_steps`` (``<= 0``: by epochs) will do, and whether the
    user should be warned: a changed ``max_steps`` recomputes the learning-rate schedule (the rate jumps from the
    one the checkpoint used) and a checkpoint already at ``max_steps`` trains nothing more."""
    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
        step, planned = int(state.get("global_step", 0)), int(state.get("max_steps", 0))
    except (OSError, ValueError, TypeError):
        return f"resuming {stage} from {checkpoint}", False
    msg = f"resuming {stage} from {checkpoint} (step {step} of {planned})"
    if max_steps > 0 and step >= max_steps:
        return f"{msg}: already at max_steps {max_steps}, nothing more to train; raise max_steps to continue", True
    if max_steps > 0 and planned and planned != max_steps:
        return (
            f"{msg}: max_steps is now {max_steps}, so the learning-rate schedule is recomputed for {max_steps} steps "
            f"and the rate jumps from the one the checkpoint was trained with",
            True,
        )
    return msg, False


def use_cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return True


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16 (oneDNN runs bfloat16 matrix products several times faster)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def bf16_ok(settings: Any) -> bool:
    """Whether to train with bfloat16 mixed precision (``model.bf16``; ``None`` = where it is fast)."""
    import torch

    want = getattr(settings, "bf16", None)
    if torch.cuda.is_available():
        supported = torch.cuda.is_bf16_supported()
        return supported and (want is None or bool(want)) and settings.dtype != "float16"
    if want is None:
        return cpu_has_fast_bf16()
    return bool(want)


def trainer_args(s: Any, cfg: TrainConfig) -> dict[str, Any]:
    """The project's choices for the TRL/transformers training arguments of every stage (checkpoints by steps, no
    reporting, the data seed, device, precision, no progress bars); ``s`` is the stage's settings (``cfg.sft``,
    ``cfg.rl`` or ``cfg.teacher``), whose own fields (``save_steps``, ``seed``...) TRL gets by name
    (:func:`~fastreasonseg.training.stage.trl_args`)."""
    return {
        "save_strategy": "steps",
        "data_seed": s.seed,
        "report_to": "none",
        "use_cpu": use_cpu(),
        "bf16": bf16_ok(cfg.model),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def write_run_info(output_dir: str | os.PathLike[str], name: str, info: dict[str, Any], cfg: TrainConfig) -> Path:
    d = Path(output_dir)
    d.mkdir(parents=True, exist_ok=True)
    save_config(cfg, d / "config.yaml")
    info = {"stage": name, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(), **info}
    p = d / f"{name}_info.json"
    p.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    return p


def save_final_adapter(model: Any, tokenizer: Any, template_source: str, output_dir: str | os.PathLike[str]) -> Path:
    """Save the PEFT adapter (+ tokenizer and the chat template it was trained with) to ``<output_dir>/final``."""
    final = Path(output_dir) / "final"
    final.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    (final / "chat_template.jinja").write_text(template_source, encoding="utf-8")
    return final


def policy_runtime(model: Any, bundle: ModelBundle, *, n_ctx: int, top_p: float = 1.0) -> Any:
    """The model being trained as a :class:`~fastreasonseg.reasoning.runtimes.transformers.TransformersRuntime`
    (same chat template as inference; sampling = temperature + ``top_p``, no top-k, as TRL's GRPO samples), for the
    executor's rollouts: GRPO's ``rollout_func`` and the format probe after SFT."""
    from fastreasonseg.reasoning.runtimes.transformers import TransformersRuntime

    return TransformersRuntime.from_model(
        model, bundle.tokenizer, bundle.template, n_ctx=n_ctx, top_k=0, top_p=top_p, name="transformers:policy"
    )


def format_probe(
    model: Any, bundle: ModelBundle, samples: list[Any], *, n_ctx: int, max_tokens: int = 160, max_rounds: int = 1
) -> dict[str, float]:
    """Greedy, unconstrained rollouts through the executor on ``samples``: format rate and mean IoU."""
    from fastreasonseg.reasoning.config import ReasonerConfig
    from fastreasonseg.reasoning.executor import run_rollout
    from fastreasonseg.training.rewards import answer_iou

    if not samples:
        return {}
    rt = policy_runtime(model, bundle, n_ctx=n_ctx)
    rc = ReasonerConfig(
        constrained=False, max_rounds=max_rounds, max_new_tokens=max_tokens, max_total_tokens=max_tokens
    )
    ok, ious = 0, []
    for s in samples:
        twin = s.load_twin()
        res = run_rollout(rt, twin, s.query, config=rc)
        ok += int(res.format_ok)
        ious.append(answer_iou(twin, res.ids if res.format_ok or res.ids else None, s.target_ids))
    return {"format_rate": ok / len(samples), "mean_iou": sum(ious) / len(ious), "n": len(samples)}
