"""Config loading, datasets built with the inference prompt/template, chains I/O and rejection sampling."""

from __future__ import annotations

import json

import pytest

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.grammar import render_rollout
from fastreasonseg.reasoning.runtimes.base import Completion
from fastreasonseg.training.chains import reference_chains, sample_chains
from fastreasonseg.training.config import load_config
from fastreasonseg.training.data import (
    Chain,
    load_samples,
    read_chains,
    results_spans,
    tokenize_example,
    write_chains,
)

from .conftest import make_twin, planned


def test_defaults_are_the_paper_recipe_and_cpu_preset():
    gpu = load_config()
    assert (gpu.lora.r, gpu.lora.alpha) == (64, 128)
    assert gpu.teacher.learning_rate == 4e-5 and gpu.teacher.lr_scheduler_type == "cosine"
    assert gpu.sft.learning_rate == 5e-5 and gpu.sft.num_train_epochs == 3
    assert gpu.rl.learning_rate == gpu.teacher.learning_rate
    assert (gpu.rewards.format_weight, gpu.rewards.accuracy_weight, gpu.rewards.reasoning_weight) == (1, 1, 0.5)
    cpu = load_config(preset="cpu")
    assert cpu.model.base == "smollm2" and cpu.lora.r == 8 and cpu.rl.num_generations == 4
    # TRL's memory-saving default on a GPU; off on a CPU, where compute is the bottleneck
    assert gpu.sft.gradient_checkpointing and gpu.rl.gradient_checkpointing and gpu.teacher.gradient_checkpointing
    assert not (cpu.sft.gradient_checkpointing or cpu.rl.gradient_checkpointing or cpu.teacher.gradient_checkpointing)
    from fastreasonseg.training.grpo import grpo_args
    from fastreasonseg.training.sft import sft_args

    assert sft_args(cpu).gradient_checkpointing is False
    assert grpo_args(gpu.rl, gpu, [1.0, 1.0, 0.5], None).gradient_checkpointing is True


def test_config_file_and_overrides(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("preset: cpu\nsft:\n  learning_rate: 0.001\nlora:\n  r: 4\n")
    cfg = load_config(p, ["lora.r=16", "rl.max_steps=7", "lora.target_modules=[q_proj, v_proj]"])
    assert cfg.preset == "cpu" and cfg.sft.learning_rate == 0.001 and cfg.lora.r == 16 and cfg.rl.max_steps == 7
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    j = tmp_path / "run.json"
    j.write_text(json.dumps({"rewards": {"judge": "none"}}))
    assert load_config(j).rewards.judge == "none"
    with pytest.raises(InputError, match=r"unknown config key 'sft\.learning_rat'"):
        load_config(None, ["sft.learning_rat=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("sft: [1, 2\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(bad)


def test_load_samples_from_dir(samples_dir):
    s = load_samples(samples_dir, "train")
    assert len(s) == 6 and s[0].target_ids == [1] and s[0].reference.startswith("<reason>")
    assert len(load_samples(samples_dir, "val", limit=2, seed=1)) == 2
    with pytest.raises(InputError, match=r"test\.jsonl"):
        load_samples(samples_dir, "test")


def test_load_samples_skip_leaves_out_the_first(samples_dir):
    every = load_samples(samples_dir, "train")
    rest = load_samples(samples_dir, "train", skip=4)
    assert [x.sample_id for x in rest] == [x.sample_id for x in every[4:]]
    subset = load_samples(samples_dir, "train", skip=2, limit=2)
    assert {x.sample_id for x in subset} <= {x.sample_id for x in every[2:]}
    with pytest.raises(InputError, match="leaves none"):
        load_samples(samples_dir, "train", skip=6)
    with pytest.raises(InputError, match=">= 0"):
        load_samples(samples_dir, "train", skip=-1)


def test_chains_file_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_chains(tmp_path / "none.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="is empty"):
        read_chains(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sample_id": "a", "rollout": "x"}\nnot json\n')
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_chains(bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"sample_id": "a"}\n')
    with pytest.raises(InputError, match="line 1 has no rollout"):
        read_chains(missing)
    ok = tmp_path / "ok.jsonl"
    write_chains([Chain("a", "r", 0.9, "t", 3)], ok)
    assert read_chains(ok)[0].seed == 3


def test_completion_mask_excludes_prompt_and_results():
    from transformers import AutoTokenizer

    from fastreasonseg.assets import smollm2_gguf_path

    g = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)
    rollout = render_rollout("look", [1], rounds=[("mug", {"ids": [1]})])
    prompt = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    ex = tokenize_example(tok, prompt, rollout)
    kept = tok.decode([t for t, m in zip(ex["input_ids"], ex["completion_mask"], strict=True) if m])
    assert "<reason>look</reason>" in kept and "<answer>" in kept and kept.endswith("<|im_end|>")
    assert "results" not in kept and "user" not in kept
    assert results_spans("a\n<results>{}</results>\nb") == [(1, 24)]


class ScriptedRuntime:
    """Answers every query with the next scripted rollout, one executor turn at a time (the reason, the plan, the
    answer ids); ``raise`` raises, ``error`` reports a failed call."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)
        self.current = ""

    def count_tokens(self, text):
        return len(text) // 3

    def complete(self, prompt, assistant_prefix, *, stop, max_tokens, grammar=None, temperature=0.0, seed=None):
        if assistant_prefix == "<reason>":
            item = self.script.pop(0)
            if item == "raise":
                raise TimeoutError("the teacher endpoint timed out")
            if item == "error":
                return Completion(text="", finish_reason="error", error="timed out after 30 s")
            self.current = item
            text = item.removeprefix("<reason>")
        elif assistant_prefix.endswith("<plan>"):
            text = self.current.split("<plan>", 1)[1] if "<plan>" in self.current else ""
        else:
            text = self.current.split('<answer>{"ids": [', 1)[1] if "<answer>" in self.current else ""
        return Completion(text=text, finish_reason="stop", completion_tokens=5)


def test_rejection_sampling_keeps_exactly_chains_above_threshold(samples):
    # twin of sample 0: mug (id 1, 10x12=120 px), table (id 2); target [1]
    s = samples[0]
    exact = planned("A mug.", [1])
    both = planned("Mug and table.", [1, 2])  # IoU 120/(120+...) well below 0.7
    wrong = planned("The table.", [2])
    rt = ScriptedRuntime([exact, both, wrong, "raise", "error", "<reason>no answer"])
    chains, stats = sample_chains(rt, [s, s], k=3, threshold=0.7, max_per_sample=5)
    assert len(chains) == 1 and chains[0].rollout.startswith("<reason>A mug.</reason>\n<plan>#1</plan>")
    assert chains[0].rollout.endswith('<answer>{"ids": [1]}</answer>')  # the executor's own results in between
    assert chains[0].iou == 1.0 and chains[0].teacher == "scripted" and chains[0].seed is not None
    assert stats.rollouts == 6 and stats.kept == 1 and stats.errors == 2 and stats.rejected == 3
    assert "timed out" in stats.error_messages[0]


def test_threshold_is_strict():
    # target = ids 1+2 (200 px); answering id 1 (140 px) gives IoU exactly 0.7: not above the threshold
    twin = make_twin([(1, "a", (0, 0, 14, 10)), (2, "b", (14, 0, 20, 10))])
    from fastreasonseg.training.data import TrainSample

    s = TrainSample("x", twin.to_dict(), "which?", [1, 2])
    rt = ScriptedRuntime([planned("a", [1]), planned("ab", [1, 2])])
    chains, _ = sample_chains(rt, [s], k=2, threshold=0.7)
    assert len(chains) == 1 and chains[0].iou == 1.0
    chains, _ = sample_chains(ScriptedRuntime([planned("a", [1])]), [s], k=1, threshold=0.69)
    assert len(chains) == 1 and chains[0].iou == pytest.approx(0.7)


def test_reference_chains(samples):
    chains, stats = reference_chains(samples)
    assert len(chains) == len(samples) and all(c.iou == 1.0 for c in chains) and stats.rejected == 0


def test_last_checkpoint_and_resume_message(tmp_path):
    from fastreasonseg.training.common import last_checkpoint, resume_message

    assert last_checkpoint(tmp_path / "missing") is None
    for step in (50, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"global_step": step, "max_steps": 300}), encoding="utf-8"
        )
    (tmp_path / "checkpoint-200").mkdir()  # half-written: no trainer state
    ck = last_checkpoint(tmp_path)
    assert ck == str(tmp_path / "checkpoint-100")
    msg, warn = resume_message(ck, 300, "SFT")
    assert not warn and msg.endswith("(step 100 of 300)")
    msg, warn = resume_message(ck, 800, "SFT")
    assert warn and "recomputed for 800 steps" in msg
    msg, warn = resume_message(ck, 100, "SFT")
    assert warn and "nothing more to train" in msg
    assert resume_message(ck, -1, "SFT") == (f"resuming SFT from {ck} (step 100 of 300)", False)  # by epochs
    half = tmp_path / "checkpoint-200"
    assert resume_message(half, 300, "SFT") == (f"resuming SFT from {half}", False)
