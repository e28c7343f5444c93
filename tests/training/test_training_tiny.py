"""A few steps of SFT, student GRPO and teacher GRPO on a tiny random Llama; export; both runtimes use the adapter;
resume after an interruption."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fastreasonseg.reasoning.runtimes.base import ChatPrompt
from fastreasonseg.training.data import Chain

from .conftest import tiny_config

pytestmark = pytest.mark.slow


class Interrupt(Exception):
    pass


def _stop_at(step: int):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupt(f"killed at step {step}")

    return StopAt()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def sft_result(run_dir, tiny_model_dir, samples_dir, samples):
    """SFT killed after step 3 (checkpoints every step), then resumed to step 4."""
    from fastreasonseg.training.sft import run_sft

    cfg = tiny_config(run_dir, tiny_model_dir, samples_dir, **{"sft.save_steps": 1, "sft.max_steps": 4})
    chains = [Chain(s.sample_id, s.reference, 1.0, "reference") for s in samples]
    with pytest.raises(Interrupt):
        run_sft(cfg, chains=chains, callbacks=[_stop_at(3)])
    ckpts = sorted(p.name for p in (run_dir / "sft").glob("checkpoint-*"))
    assert ckpts[-1] == "checkpoint-2"  # step 3 was interrupted before its checkpoint
    return run_sft(cfg, chains=chains)


def test_sft_resumes_and_saves_adapter(sft_result):
    r = sft_result
    assert r.resumed_from and r.resumed_from.endswith("checkpoint-2")
    assert r.global_step == 4
    assert math.isfinite(r.metrics["last_loss"])
    assert (r.adapter_dir / "adapter_config.json").is_file()
    assert (r.adapter_dir / "chat_template.jinja").is_file()
    state = json.loads((r.output_dir / "checkpoint-4" / "trainer_state.json").read_text())
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert steps == [1, 2, 3, 4]  # the two finished steps were kept, steps 3-4 trained after the resume


def test_sft_continues_an_adapter_on_new_samples(tmp_path, tiny_model_dir, samples_dir, samples, sft_result):
    """``sft.init_adapter`` trains an existing adapter further (its own LoRA shape) on the samples ``data.skip``
    leaves; the starting adapter is read, never written."""
    import torch
    from safetensors.torch import load_file

    from fastreasonseg.training.sft import run_sft

    start = sft_result.adapter_dir
    before = load_file(str(start / "adapter_model.safetensors"))
    cfg = tiny_config(
        tmp_path,
        tiny_model_dir,
        samples_dir,
        **{
            "sft.max_steps": 2,
            "sft.warmup_ratio": 0,
            "sft.init_adapter": str(start),
            "data.skip": 4,
            "lora.r": 8,
            "lora.alpha": 16,
        },
    )
    chains = [Chain(s.sample_id, s.reference, 1.0, "reference") for s in samples]
    r = run_sft(cfg, chains=chains)
    assert r.global_step == 2 and r.metrics["examples"] == 2  # the 2 samples after the first 4
    after = load_file(str(r.adapter_dir / "adapter_model.safetensors"))
    assert after.keys() == before.keys()
    assert all(after[k].shape == before[k].shape for k in before)  # r=4 kept, lora.r=8 ignored
    assert any(not torch.equal(after[k], before[k]) for k in before)
    assert all(torch.equal(v, load_file(str(start / "adapter_model.safetensors"))[k]) for k, v in before.items())
    info = json.loads((r.output_dir / "sft_info.json").read_text())
    assert info["init_adapter"] == str(start)


def test_student_grpo_from_sft_adapter(run_dir, tiny_model_dir, samples_dir, samples, sft_result):
    from fastreasonseg.training.rl import run_rl

    class Judge:
        def score_pairs(self, s, t):
            return [0.5] * len(s)

    cfg = tiny_config(run_dir, tiny_model_dir, samples_dir)
    r = run_rl(cfg, samples=samples[:1], max_steps=1, judge=Judge())
    assert r.global_step == 1
    assert math.isfinite(r.metrics["train_loss"])
    assert r.metrics["rollouts"] == 2 and r.metrics["reward_failures"] == {"format": 0, "accuracy": 0, "reasoning": 0}
    info = json.loads((r.output_dir / "rl_info.json").read_text())
    assert info["init_adapter"].endswith("sft/final")
    assert (r.adapter_dir / "adapter_model.safetensors").is_file()


def test_teacher_grpo_single_turn(run_dir, tiny_model_dir, samples_dir, samples):
    from fastreasonseg.training.teacher import run_teacher

    cfg = tiny_config(run_dir, tiny_model_dir, samples_dir, **{"teacher.rollout": "single_turn"})
    r = run_teacher(cfg, samples=samples[:1], max_steps=1)
    assert r.global_step == 1 and math.isfinite(r.metrics["train_loss"])
    assert (r.adapter_dir / "adapter_config.json").is_file()


def test_export_and_both_runtimes_use_the_adapter(run_dir, tiny_model_dir, sft_result):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    from fastreasonseg.assets import smollm2_gguf_path
    from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime
    from fastreasonseg.reasoning.runtimes.transformers import TransformersRuntime
    from fastreasonseg.training.config import ModelSettings
    from fastreasonseg.training.export import export_adapter, gguf_metadata, write_llama_gguf
    from fastreasonseg.training.models import chat_template, load_tokenizer

    # a tiny GGUF base with the same weights (and SmolLM2's tokenizer + template)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    state = {k: v.numpy() for k, v in base.state_dict().items()}
    base_gguf = write_llama_gguf(state, cfg, run_dir / "tiny.gguf", template_gguf=smollm2_gguf_path(), qtype="f32")

    # the trained adapter, with its LoRA B scaled up so that it visibly changes the output of the random model
    adapter = run_dir / "adapter-big"
    adapter.mkdir()
    for f in ("adapter_config.json",):
        (adapter / f).write_text((sft_result.adapter_dir / f).read_text())
    t = load_file(str(sft_result.adapter_dir / "adapter_model.safetensors"))
    torch.manual_seed(0)
    t = {k: (torch.randn_like(v) * 0.5 if "lora_B" in k else v) for k, v in t.items()}
    save_file(t, str(adapter / "adapter_model.safetensors"))

    paths = export_adapter(adapter, run_dir / "export", base_dir=str(tiny_model_dir), base_gguf=base_gguf)
    md = gguf_metadata(paths["gguf_lora"])
    assert md["general.type"] == "adapter" and md["adapter.type"] == "lora" and md["general.architecture"] == "llama"
    exported = load_file(str(Path(paths["peft"]) / "adapter_model.safetensors"))
    assert exported.keys() == t.keys() and all(v.dtype == torch.float16 for v in exported.values())
    assert all(torch.allclose(exported[k].float(), t[k], rtol=1e-3, atol=1e-4) for k in t)

    tok = load_tokenizer(str(tiny_model_dir))
    template = chat_template(tok, ModelSettings(base=str(tiny_model_dir)))
    prompt = ChatPrompt("You pick objects.", "what can I drink from?")

    def hf_text(model):
        rt = TransformersRuntime.from_model(model, tok, template)
        return rt.complete(prompt, "<reason>", stop=[], max_tokens=6).text

    with_adapter = PeftModel.from_pretrained(base, paths["peft"])
    hf_lora = hf_text(with_adapter)
    with with_adapter.disable_adapter():
        hf_base = hf_text(with_adapter)
    lc_base = LlamaCppRuntime(model_path=base_gguf, n_ctx=1024, n_threads=2)
    lc_lora = LlamaCppRuntime(model_path=base_gguf, lora_path=paths["gguf_lora"], n_ctx=1024, n_threads=2)
    lc_b = lc_base.complete(prompt, "<reason>", stop=[], max_tokens=6).text
    lc_l = lc_lora.complete(prompt, "<reason>", stop=[], max_tokens=6).text
    assert lc_base.render(prompt, "<reason>") == template.render_text(prompt, "<reason>")
    assert hf_lora != hf_base  # the adapter changes the output ...
    assert lc_l == hf_lora  # ... identically in llama.cpp (GGUF LoRA) and transformers (PEFT)
    assert lc_b == hf_base


def test_completion_only_loss_matches_trl(tmp_path, tiny_model_dir, samples_dir, samples):
    """The SFT loss that projects only the labelled positions, and runs the rows' shared prefix once, equals TRL's own
    loss (and its gradients)."""
    import torch
    from peft import get_peft_model
    from trl import SFTConfig

    from fastreasonseg.training.common import model_bundle
    from fastreasonseg.training.models import load_model, lora_config
    from fastreasonseg.training.sft import (
        MIN_SHARED_PREFIX,
        _completion_sft_trainer_class,
        sft_dataset,
        shared_prefix_length,
    )

    cfg = tiny_config(tmp_path, tiny_model_dir, samples_dir)
    bundle = model_bundle(cfg)
    chains = [Chain(s.sample_id, s.reference, 1.0, "reference") for s in samples]
    ds = sft_dataset(cfg, bundle, samples, chains)
    model = get_peft_model(load_model(bundle.path, "float32"), lora_config(cfg.lora))
    for n, p in model.named_parameters():  # LoRA B starts at zero: make the adapter non-trivial
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.02)
    args = SFTConfig(output_dir=str(tmp_path / "o"), report_to="none", use_cpu=True, completion_only_loss=True)
    trainer_class = _completion_sft_trainer_class()
    trainer = trainer_class(model=model, args=args, train_dataset=ds, processing_class=bundle.tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    n_items = int((batch["labels"][:, 1:] != -100).sum())
    assert 0 < n_items < batch["labels"].numel() // 2  # most positions are prompt
    prefix = shared_prefix_length(batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert prefix >= MIN_SHARED_PREFIX  # the system prompt: the shared-prefix path runs
    assert (batch["labels"][:, : prefix + 1] == -100).all()

    def loss_and_grads(compute):
        model.zero_grad()
        loss = compute(model, dict(batch), num_items_in_batch=n_items)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    ours, g_ours = loss_and_grads(trainer.compute_loss)
    trainer.shared_prefix = False
    whole, g_whole = loss_and_grads(trainer.compute_loss)
    theirs, g_theirs = loss_and_grads(super(type(trainer), trainer).compute_loss)
    assert math.isfinite(ours) and ours == pytest.approx(theirs, rel=1e-4) and whole == pytest.approx(theirs, rel=1e-4)
    for a, b, c in zip(g_ours, g_whole, g_theirs, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-3, atol=1e-6)
        torch.testing.assert_close(b, c, rtol=1e-3, atol=1e-6)
    metrics = trainer._metrics["train"]
    for k in (1, 2):
        assert metrics["mean_token_accuracy"][0] == pytest.approx(metrics["mean_token_accuracy"][k], abs=1e-6)
        assert metrics["entropy"][0] == pytest.approx(metrics["entropy"][k], rel=1e-3)
