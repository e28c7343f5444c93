"""``fastreasonseg train teacher|chains|sft|rl|export --config FILE [section.key=value ...]``.

Every command reads one config (YAML/JSON, see :mod:`fastreasonseg.training.config`) on top of a preset
(``--preset cpu|gpu``, default the file's ``preset`` or ``gpu``) and applies ``section.key=value`` overrides.
``train config`` prints the resolved config.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from fastreasonseg.cli.common import console, fail

train_app = typer.Typer(no_args_is_help=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML or JSON config file.", exists=False)
PresetOpt = typer.Option(None, "--preset", help="Base preset: gpu (the paper's recipe) or cpu (toy scale).")
OverridesArg = typer.Argument(None, help="Overrides, e.g. sft.learning_rate=1e-4 lora.r=16.", show_default=False)
StepsOpt = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps (overrides the config).")


def _cfg(config: Path | None, preset: str | None, overrides: list[str] | None):
    from fastreasonseg.training.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return load_config(config, overrides or [], preset=preset)


def _report(title: str, data: dict) -> None:
    console.print(f"[bold]{title}[/]")
    console.print_json(json.dumps(data, default=str))


@train_app.command("config")
def show_config(
    config: Path | None = ConfigOpt, preset: str | None = PresetOpt, overrides: list[str] | None = OverridesArg
):
    """Print the resolved config (preset + file + overrides) as YAML."""
    import yaml

    cfg = _cfg(config, preset, overrides)
    console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), markup=False, highlight=False)


@train_app.command("teacher")
def teacher(
    config: Path | None = ConfigOpt,
    preset: str | None = PresetOpt,
    overrides: list[str] | None = OverridesArg,
    max_steps: int | None = StepsOpt,
):
    """Teacher GRPO (LoRA) with format + accuracy rewards."""
    from fastreasonseg.training.teacher import run_teacher

    r = run_teacher(_cfg(config, preset, overrides), max_steps=max_steps)
    _report("teacher", {"adapter": str(r.adapter_dir), "global_step": r.global_step, "resumed_from": r.resumed_from})


@train_app.command("chains")
def chains(
    config: Path | None = ConfigOpt,
    preset: str | None = PresetOpt,
    overrides: list[str] | None = OverridesArg,
    from_reference: bool = typer.Option(
        False, "--from-reference", help="Use the samples' reference rationales as chains (bootstrap, no teacher)."
    ),
    teacher: str | None = typer.Option(
        None, "--teacher", help="Runtime spec: llamacpp[:BASE.gguf[+LORA.gguf]], openai:URL#MODEL, transformers:DIR."
    ),
):
    """Sample k rollouts per example from the teacher, keep those with IoU > threshold, write JSONL."""
    from fastreasonseg.training.chains import run_chains

    cfg = _cfg(config, preset, overrides)
    if from_reference:
        cfg.chains.from_reference = True
    if teacher:
        cfg.chains.teacher = teacher
    stats = run_chains(cfg)
    _report("chains", {"output": cfg.chains.output, **stats.to_dict()})
    if stats.kept == 0:
        fail(f"no chain passed the IoU threshold {cfg.chains.threshold}: {cfg.chains.output} is empty")


@train_app.command("sft")
def sft(
    config: Path | None = ConfigOpt,
    preset: str | None = PresetOpt,
    overrides: list[str] | None = OverridesArg,
    max_steps: int | None = StepsOpt,
):
    """Student SFT (LoRA, loss on completions only) on the chains file; resumes from the last checkpoint."""
    from fastreasonseg.training.sft import run_sft

    r = run_sft(_cfg(config, preset, overrides), max_steps=max_steps)
    _report("sft", {"adapter": str(r.adapter_dir), "global_step": r.global_step, **r.metrics})


@train_app.command("rl")
def rl(
    config: Path | None = ConfigOpt,
    preset: str | None = PresetOpt,
    overrides: list[str] | None = OverridesArg,
    max_steps: int | None = StepsOpt,
):
    """Student GRPO with format + accuracy + γ·reasoning, warm-started from the SFT adapter."""
    from fastreasonseg.training.rl import run_rl

    r = run_rl(_cfg(config, preset, overrides), max_steps=max_steps)
    _report("rl", {"adapter": str(r.adapter_dir), "global_step": r.global_step, **r.metrics})


@train_app.command("export")
def export(
    config: Path | None = ConfigOpt,
    preset: str | None = PresetOpt,
    overrides: list[str] | None = OverridesArg,
    adapter: Path | None = typer.Option(None, "--adapter", help="PEFT adapter dir (default: rl, else sft final)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output directory."),
    merged: str | None = typer.Option(None, "--merged", help="Also write a merged GGUF: q8_0, f16 or f32."),
):
    """Write the PEFT adapter and a GGUF LoRA for llama.cpp (and a merged GGUF on request)."""
    from fastreasonseg.training.export import export_adapter
    from fastreasonseg.training.models import gguf_base_path, model_dir

    cfg = _cfg(config, preset, overrides)
    src = adapter or (Path(cfg.export.adapter) if cfg.export.adapter else None)
    if src is None:
        for cand in (Path(cfg.rl.output_dir) / "final", Path(cfg.sft.output_dir) / "final"):
            if (cand / "adapter_config.json").is_file():
                src = cand
                break
    if src is None:
        fail("no adapter to export: pass --adapter DIR (or train sft/rl first)")
    base_gguf = gguf_base_path(cfg.model)
    want_merged = merged or cfg.export.merged
    paths = export_adapter(
        src,
        output or cfg.export.output_dir,
        base_dir=model_dir(cfg.model),
        base_gguf=base_gguf,
        gguf_lora=cfg.export.gguf_lora and base_gguf is not None,
        merged=want_merged,
    )
    if base_gguf is None:
        console.print("no GGUF base (model.gguf_base): only the PEFT adapter was written")
    _report("export", paths)
