"""The model being trained as a runtime (GRPO rollouts, the SFT format probe): TransformersRuntime.from_model."""

from __future__ import annotations

import pytest

from fastreasonseg.reasoning.runtimes.base import ChatPrompt

PROMPT = ChatPrompt("You pick objects.", "what can I drink from?")


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from fastreasonseg.training.common import ModelBundle, policy_runtime
    from fastreasonseg.training.config import ModelSettings
    from fastreasonseg.training.models import chat_template, load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    bundle = ModelBundle(str(tiny_model_dir), tok, chat_template(tok, ModelSettings(base=str(tiny_model_dir))))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return model, bundle, policy_runtime(model, bundle, n_ctx=1024, top_p=0.9)


def test_greedy_continuation_is_generate_s(policy):
    import torch

    model, bundle, rt = policy
    text = bundle.template.render_text(PROMPT, "<reason>")
    ids = bundle.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)
    want = bundle.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    comp = rt.complete(PROMPT, "<reason>", stop=[], max_tokens=8)
    assert comp.text == want and comp.completion_tokens == 8 and comp.finish_reason == "length"
    assert (rt.top_k, rt.top_p, rt.n_ctx, rt.name) == (0, 0.9, 1024, "transformers:policy")


def test_a_training_model_samples_in_eval_mode_and_keeps_training(policy):
    model, _, rt = policy
    model.train()
    try:
        a = rt.complete(PROMPT, "<reason>", stop=[], max_tokens=6, temperature=1.0, seed=3)
        assert model.training
        b = rt.complete(PROMPT, "<reason>", stop=[], max_tokens=6, temperature=1.0, seed=3)
        c = rt.complete(PROMPT, "<reason>", stop=[], max_tokens=6, temperature=1.0, seed=4)
    finally:
        model.eval()
    assert a.text == b.text  # seeded sampling repeats (and the reused prompt cache does not change it)
    assert b.cached_tokens > 0
    assert c.text != a.text  # another seed, another sample


def test_the_context_cap_is_the_given_n_ctx(policy):
    from fastreasonseg.errors import InputError

    model, bundle, _ = policy
    from fastreasonseg.training.common import policy_runtime

    small = policy_runtime(model, bundle, n_ctx=16)
    with pytest.raises(InputError, match="context is 16"):
        small.complete(PROMPT, "", stop=[], max_tokens=4)
