"""The stage scaffolding: TRL's configs from the settings, and resume → train → save → run info."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from fastreasonseg.assets import asset_path
from fastreasonseg.errors import InputError
from fastreasonseg.training.config import GRPOSettings, SFTSettings, load_config, save_config, trl_fields
from fastreasonseg.training.grpo import grpo_args
from fastreasonseg.training.sft import sft_args
from fastreasonseg.training.stage import train_stage

STUDENT_CONFIG = asset_path("student/train_config.yaml")


@pytest.mark.parametrize(("settings", "trl_name"), [(SFTSettings, "SFTConfig"), (GRPOSettings, "GRPOConfig")])
def test_every_setting_is_a_trl_field_or_the_project_s_own(settings, trl_name):
    import trl

    known = {f.name for f in dataclasses.fields(getattr(trl, trl_name))}
    named = trl_fields(settings())
    assert set(named) <= known, set(named) - known  # a TRL release that renames a field fails here
    own = {f.name for f in dataclasses.fields(settings) if f.metadata.get("trl") is False}
    assert own >= {"resume", "init_adapter"} and not own & set(named)
    assert named["warmup_steps"] == settings().warmup_ratio and "warmup_ratio" not in named


def test_the_student_s_sft_config_is_the_one_it_was_trained_with():
    cfg = load_config(STUDENT_CONFIG)
    a = sft_args(cfg)
    assert (a.output_dir, a.learning_rate, a.max_steps, a.warmup_steps) == ("runs/student/sft", 0.001, 1000, 0.03)
    assert (a.per_device_train_batch_size, a.gradient_accumulation_steps, a.max_length) == (4, 1, 1024)
    assert (a.save_steps, a.save_total_limit, a.logging_steps, a.seed, a.data_seed) == (25, 60, 5, 0, 0)
    assert a.completion_only_loss and a.optim == "adamw_torch" and a.lr_scheduler_type == "linear"
    assert a.gradient_checkpointing is False and a.weight_decay == 0.0 and a.save_strategy == "steps"
    assert sft_args(cfg, max_steps=3).max_steps == 3
    rl = grpo_args(cfg.rl, cfg, [1.0, 1.0, 0.5], None)
    assert (rl.max_steps, rl.num_generations, rl.max_completion_length, rl.temperature) == (24, 4, 96, 0.8)
    assert rl.reward_weights == [1.0, 1.0, 0.5] and rl.loss_type == "dapo" and rl.beta == 0.0


def test_trl_passes_any_other_field_and_refuses_unknown_or_shadowed_ones(tmp_path):
    over = ["sft.trl.max_grad_norm=0.5", "sft.trl.optim=adafactor", "rl.trl.epsilon=0.3"]
    cfg = load_config(None, over, preset="cpu")
    assert cfg.sft.trl == {"max_grad_norm": 0.5, "optim": "adafactor"}
    a = sft_args(cfg)
    assert a.max_grad_norm == 0.5 and a.optim == "adafactor"  # overrides the project's AdamW
    assert grpo_args(cfg.rl, cfg, [1.0, 1.0], None).epsilon == 0.3
    f = tmp_path / "run.yaml"
    f.write_text("preset: cpu\nsft:\n  trl:\n    max_grad_norm: 2.0\n  learning_rate: 0.01\n")
    from_file = load_config(f)
    assert from_file.sft.trl == {"max_grad_norm": 2.0} and sft_args(from_file).max_grad_norm == 2.0
    with pytest.raises(InputError, match=r"sft\.trl: not_a_field are not fields of trl\.SFTConfig"):
        sft_args(load_config(None, ["sft.trl.not_a_field=1"]))
    with pytest.raises(InputError, match=r"use sft\.learning_rate, sft\.warmup_ratio instead"):
        sft_args(load_config(None, ["sft.trl={learning_rate: 1, warmup_steps: 2}"]))
    with pytest.raises(InputError, match=r"unknown config section 'sft\.trll\.x'"):
        load_config(None, ["sft.trll.x=1"])


def test_a_written_config_loads_back_the_same(tmp_path):
    for preset in ("cpu", "gpu"):
        cfg = load_config(preset=preset)
        save_config(cfg, tmp_path / f"{preset}.yaml")
        assert load_config(tmp_path / f"{preset}.yaml").to_dict() == cfg.to_dict()
    student = load_config(STUDENT_CONFIG)
    save_config(student, tmp_path / "student.yaml")
    assert load_config(tmp_path / "student.yaml").to_dict() == student.to_dict()


class FakeTrainer:
    """Just what train_stage touches of a TRL trainer."""

    def __init__(self, max_steps: int) -> None:
        self.args = SimpleNamespace(max_steps=max_steps)
        self.state = SimpleNamespace(global_step=0, log_history=[])
        self.saved: list[Path] = []
        self.model = SimpleNamespace(save_pretrained=lambda d: self.saved.append(Path(d)))
        self.resumed_from = "not called"

    def train(self, resume_from_checkpoint=None):
        self.resumed_from = resume_from_checkpoint
        self.state.global_step = self.args.max_steps
        return SimpleNamespace(metrics={"train_loss": 1.5})


def test_train_stage_resumes_saves_then_measures_and_writes_the_run_info(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="fastreasonseg.training.stage")
    cfg = load_config(None, [f"sft.output_dir={tmp_path / 'sft'}"], preset="cpu")
    ck = tmp_path / "sft" / "checkpoint-4"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": 4, "max_steps": 8}))
    tokenizer = SimpleNamespace(save_pretrained=lambda d: None)
    bundle = SimpleNamespace(tokenizer=tokenizer, template=SimpleNamespace(source="T"))
    trainer = FakeTrainer(max_steps=8)

    def metrics(t):
        assert t.saved == [tmp_path / "sft" / "final"]  # measured after the adapter is saved
        return {"examples": 3}

    r = train_stage(
        trainer, stage="sft", label="SFT", settings=cfg.sft, cfg=cfg, bundle=bundle, init_adapter=None, metrics=metrics
    )
    assert trainer.resumed_from == str(ck) and "resuming SFT from" in caplog.text
    assert (r.global_step, r.resumed_from, r.adapter_dir) == (8, str(ck), tmp_path / "sft" / "final")
    assert r.metrics == {"train_loss": 1.5, "examples": 3}
    assert (r.adapter_dir / "chat_template.jinja").read_text() == "T"
    info = json.loads((tmp_path / "sft" / "sft_info.json").read_text())
    assert info["stage"] == "sft" and info["global_step"] == 8 and info["resumed_from"] == str(ck)
    assert info["examples"] == 3 and info["init_adapter"] is None and info["train_seconds"] >= 0
    assert load_config(tmp_path / "sft" / "config.yaml").to_dict() == cfg.to_dict()
    fresh = FakeTrainer(max_steps=2)
    cfg.sft.resume = False
    train_stage(fresh, stage="sft", label="SFT", settings=cfg.sft, cfg=cfg, bundle=bundle, init_adapter="A")
    assert fresh.resumed_from is None
    assert json.loads((tmp_path / "sft" / "sft_info.json").read_text())["init_adapter"] == "A"
