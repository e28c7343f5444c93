"""Benchmark: one SFT step (forward + backward + AdamW) with TRL's loss vs the project's completion-only LM head,
with and without gradient checkpointing (TRL's default is on; the CPU preset turns it off), and with the batch's shared
prefix (the system prompt) run once instead of once per row.

TRL's ``SFTTrainer`` projects *every* position through the vocabulary on a device without Triton (a CPU), while only
the completion (~10 % of a student sequence: the prompt is the system prompt + the twin view) carries loss.
``fastreasonseg.training.sft`` projects only the labelled positions. This script times both on the same real batches
of the synthetic train split (SmolLM2-135M dequantised from the GGUF, the given config's LoRA), alternating the two
losses step by step in one process so that machine noise hits both alike, and reports the ratio.

    python benchmarks/sft_loss_head.py --config /work/runs2/config.yaml --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a training config (its data, model and LoRA are used)")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per variant (after one warm-up step each)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sft_loss_head.json"))
    args = ap.parse_args()

    import tempfile

    import torch
    from peft import get_peft_model
    from trl import SFTConfig

    from fastreasonseg.training.common import bf16_ok, model_bundle
    from fastreasonseg.training.config import load_config
    from fastreasonseg.training.data import load_samples, read_chains
    from fastreasonseg.training.models import load_model, lora_config
    from fastreasonseg.training.sft import _completion_sft_trainer_class, sft_dataset

    cfg = load_config(args.config)
    bundle = model_bundle(cfg)
    bs = cfg.sft.per_device_train_batch_size
    n = bs * (args.steps + 1)
    samples = load_samples(cfg.data.samples, cfg.data.split, limit=n, seed=cfg.data.seed)
    ds = sft_dataset(cfg, bundle, samples, read_chains(cfg.data.chains or cfg.chains.output))
    model = get_peft_model(load_model(bundle.path, cfg.model.dtype), lora_config(cfg.lora))
    bf16 = bf16_ok(cfg.model)
    with tempfile.TemporaryDirectory() as tmp:
        targs = SFTConfig(output_dir=tmp, report_to="none", use_cpu=True, completion_only_loss=True, bf16=bf16)
        trainer = _completion_sft_trainer_class()(
            model=model, args=targs, train_dataset=ds, processing_class=bundle.tokenizer
        )
    trl_loss = super(type(trainer), trainer).compute_loss
    # (loss, gradient checkpointing, shared prefix): TRL's default trainer, then the project's loss with and without
    # checkpointing (checkpointing turns the prefix cache off), then without checkpointing and with the shared prefix
    variants = {
        "trl": (trl_loss, True, False),
        "completion_head": (trainer.compute_loss, True, False),
        "completion_head_no_checkpointing": (trainer.compute_loss, False, False),
        "completion_head_shared_prefix": (trainer.compute_loss, False, True),
    }
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    times: dict[str, list[float]] = {k: [] for k in variants}
    tokens = []
    model.train()
    for step in range(args.steps + 1):
        batch = trainer.data_collator(rows[step * bs : (step + 1) * bs])
        n_items = int((batch["labels"][:, 1:] != -100).sum())
        tokens.append((int(batch["attention_mask"].sum()), n_items))
        for name, (fn, checkpointing, shared) in variants.items():
            trainer.shared_prefix = shared
            if checkpointing:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_disable()
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = fn(model, dict(batch), num_items_in_batch=n_items)
            loss.backward()
            opt.step()
            opt.zero_grad()
            if step > 0:  # step 0 warms both up
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "sft_loss_head",
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "batch": bs,
        "bf16": bf16,
        "tokens_per_batch_and_labelled": tokens[1:],
        "median_step_s": {k: round(v, 2) for k, v in med.items()},
        "speedup": round(med["trl"] / med["completion_head"], 2),
        "speedup_without_checkpointing": round(med["trl"] / med["completion_head_no_checkpointing"], 2),
        "speedup_shared_prefix": round(med["trl"] / med["completion_head_shared_prefix"], 2),
        "shared_prefix_vs_no_checkpointing": round(
            med["completion_head_no_checkpointing"] / med["completion_head_shared_prefix"], 2
        ),
    }
    print(f"| loss | median s/step (batch {bs}, {args.steps} steps) |")
    print("|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} |")
    print(
        f"speed-up over TRL: {result['speedup']}x, {result['speedup_without_checkpointing']}x without checkpointing, "
        f"{result['speedup_shared_prefix']}x with the shared prefix "
        f"({result['shared_prefix_vs_no_checkpointing']}x over the same loss without it)"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
