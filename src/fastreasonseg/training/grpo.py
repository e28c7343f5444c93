"""GRPO (``trl.GRPOTrainer`` + LoRA) shared by the teacher stage and the student RL stage.

Rollouts. With ``rollout = "executor"`` (default) every completion is a full rollout produced by the project's
executor (:func:`fastreasonseg.reasoning.executor.run_rollout`) on the model being trained, through TRL's
``rollout_func``: the model writes ``<reason>`` and ``<plan>``s, the executor runs the tools on the sample's twin and
appends ``<results>``, the model continues to ``<answer>``. The tokens the executor wrote are masked out of the policy
loss (``env_mask``), so the model is trained only on what it wrote — the same tool loop, prompt and chat template as
inference. (TRL's own ``tools=`` needs a tool-aware chat template, which SmolLM2's ChatML is not, and it would change
the rollout format; docs/design.md §6.) ``rollout = "single_turn"`` uses TRL's batched generation of one turn instead
(faster; plans are not executed).

Rewards are :mod:`fastreasonseg.training.rewards` (format + accuracy for the teacher; + γ·reasoning for the student),
weighted by ``reward_weights``. Runs are seeded and resume from the newest checkpoint of ``output_dir``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastreasonseg.errors import InputError
from fastreasonseg.training.common import ModelBundle, config_samples, model_bundle, policy_runtime
from fastreasonseg.training.config import GRPOSettings, TrainConfig
from fastreasonseg.training.data import PromptBuilder, TrainSample, build_grpo_dataset
from fastreasonseg.training.rewards import Judge, build_rewards, failure_counts
from fastreasonseg.training.stage import StageResult, stage_model, train_stage, trl_args

log = logging.getLogger(__name__)


class ExecutorRollouts:
    """A TRL ``rollout_func`` that runs the project's executor with the trainer's model (see the module docstring)."""

    def __init__(
        self,
        bundle: ModelBundle,
        samples: dict[str, TrainSample],
        prompt_to_sample: dict[str, str],
        settings: GRPOSettings,
        n_ctx: int,
    ) -> None:
        from fastreasonseg.reasoning.config import ReasonerConfig

        self.bundle = bundle
        self.samples = samples
        self.prompt_to_sample = prompt_to_sample
        self.n_ctx = n_ctx
        self.top_p = settings.top_p
        self.config = ReasonerConfig(
            constrained=False,
            max_rounds=settings.max_rounds,
            max_new_tokens=settings.max_completion_length,
            max_total_tokens=settings.max_completion_length,
            temperature=settings.temperature,
        )
        self.calls = 0
        self.format_ok = 0
        self.tool_calls = 0
        self._seed = settings.seed * 1_000_003

    def _tokens(self, prompt_text: str, rollout: str, answered: bool) -> tuple[list[int], list[int], list[int]]:
        from fastreasonseg.training.data import results_spans

        tok = self.bundle.tokenizer
        p_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
        full = prompt_text + rollout
        enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
        ids, offs = enc["input_ids"], enc["offset_mapping"]
        if ids[: len(p_ids)] != p_ids:  # a token straddles the boundary: tokenize the parts apart
            c_ids = tok(rollout, add_special_tokens=False, return_offsets_mapping=True)
            ids = p_ids + c_ids["input_ids"]
            offs = [(0, 0)] * len(p_ids) + [
                (a + len(prompt_text), b + len(prompt_text)) for a, b in c_ids["offset_mapping"]
            ]
        spans = results_spans(rollout, len(prompt_text))
        comp = ids[len(p_ids) :]
        mask = [0 if any(a < e and b > s for s, e in spans) else 1 for a, b in offs[len(p_ids) :]]
        if answered and tok.eos_token_id is not None:
            comp.append(tok.eos_token_id)
            mask.append(1)
        if not comp:  # TRL needs at least one completion token
            comp, mask = [tok.eos_token_id], [1]
        return p_ids, comp, mask

    def __call__(self, prompts: list[str], trainer: Any) -> dict[str, Any]:
        from fastreasonseg.reasoning.executor import run_rollout

        rt = policy_runtime(trainer.model, self.bundle, n_ctx=self.n_ctx, top_p=self.top_p)
        out: dict[str, list[Any]] = {"prompt_ids": [], "completion_ids": [], "logprobs": None, "env_mask": []}
        for prompt in prompts:
            sid = self.prompt_to_sample.get(prompt)
            if sid is None:
                raise KeyError("a GRPO prompt is not in the dataset (the rollout function cannot find its twin)")
            s = self.samples[sid]
            self._seed += 1
            cfg = self.config
            cfg.seed = self._seed
            twin = s.load_twin()
            res = run_rollout(rt, twin, s.query, config=cfg)
            self.calls += 1
            self.format_ok += int(res.format_ok)
            self.tool_calls += len(res.tool_calls)
            answered = res.rollout.rstrip().endswith("</answer>")
            p, c, m = self._tokens(prompt, res.rollout, answered)
            out["prompt_ids"].append(p)
            out["completion_ids"].append(c)
            out["env_mask"].append(m)
        return out


def grpo_args(
    s: GRPOSettings, cfg: TrainConfig, weights: list[float], max_steps: int | None, section: str = "rl"
) -> Any:
    """``trl.GRPOConfig`` of a GRPO stage's settings (see :func:`~.stage.trl_args`) with the rewards' weights."""
    from trl import GRPOConfig

    gen_batch = s.per_device_train_batch_size * s.gradient_accumulation_steps
    if gen_batch % s.num_generations:
        raise InputError(
            f"per_device_train_batch_size × gradient_accumulation_steps ({gen_batch}) must be a multiple of "
            f"num_generations ({s.num_generations})"
        )
    steps = {} if max_steps is None else {"max_steps": max_steps}
    return trl_args(GRPOConfig, s, cfg, section, reward_weights=weights, log_completions=False, **steps)


def _init_adapter(cfg: TrainConfig, stage: str, s: GRPOSettings) -> str | None:
    """``s.init_adapter``; for student RL without one, the SFT adapter ``<sft.output_dir>/final`` when it exists."""
    if stage != "rl" or s.init_adapter is not None:
        return s.init_adapter
    cand = Path(cfg.sft.output_dir) / "final"
    if (cand / "adapter_config.json").is_file():
        return str(cand)
    log.warning("student RL without an SFT adapter: GRPO from the base model gets ~zero reward (docs/design.md §6)")
    return None


def _rollout_metrics(funcs: list[Any], rollout_func: ExecutorRollouts | None) -> Callable[[Any], dict[str, Any]]:
    def metrics(trainer: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        hist = [h for h in trainer.state.log_history if "reward" in h]
        if hist:
            out["first_reward"] = hist[0]["reward"]
            out["last_reward"] = hist[-1]["reward"]
        out["reward_failures"] = failure_counts(funcs)
        if rollout_func is not None:
            out["rollouts"] = rollout_func.calls
            out["rollout_format_rate"] = rollout_func.format_ok / max(1, rollout_func.calls)
            out["tool_calls"] = rollout_func.tool_calls
        return out

    return metrics


def run_grpo(
    cfg: TrainConfig,
    stage: str,
    *,
    samples: list[TrainSample] | None = None,
    references: dict[str, str] | None = None,
    judge: Judge | None = None,
    callbacks: list[Any] | None = None,
    max_steps: int | None = None,
) -> StageResult:
    """GRPO for ``stage`` = ``teacher`` (format + accuracy) or ``rl`` (+ γ·reasoning judge against ``references``)."""
    from trl import GRPOTrainer

    if stage not in ("teacher", "rl"):
        raise ValueError(f"stage must be 'teacher' or 'rl', got {stage!r}")
    s: GRPOSettings = cfg.teacher if stage == "teacher" else cfg.rl
    bundle = model_bundle(cfg)
    if samples is None:
        samples = config_samples(cfg)
    builder = PromptBuilder(bundle.tokenizer, bundle.template, n_ctx=cfg.model.n_ctx)
    ds = build_grpo_dataset(samples, builder, references)
    funcs, weights = build_rewards(cfg.rewards, reasoning=stage == "rl", judge=judge)
    args = grpo_args(s, cfg, weights, max_steps, stage)
    init = _init_adapter(cfg, stage, s)
    model, peft_config = stage_model(cfg, bundle, init)
    rollout_func = None
    if s.rollout == "executor":
        by_id = {x.sample_id: x for x in samples}
        rollout_func = ExecutorRollouts(
            bundle, by_id, dict(zip(ds["prompt"], ds["sample_id"], strict=True)), s, cfg.model.n_ctx
        )
    elif s.rollout != "single_turn":
        raise InputError(f"unknown rollout mode {s.rollout!r} (executor, single_turn)")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=ds,
        processing_class=bundle.tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
        rollout_func=rollout_func,
    )
    return train_stage(
        trainer,
        stage=stage,
        label=f"{stage} GRPO",
        settings=s,
        cfg=cfg,
        bundle=bundle,
        init_adapter=init,
        metrics=_rollout_metrics(funcs, rollout_func),
    )
