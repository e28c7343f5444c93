"""Training samples and TRL datasets, built with the inference prompt and the inference chat template.

Every dataset row's prompt is exactly what the reasoner sends at inference: the system + user messages of
:class:`fastreasonseg.reasoning.executor.Reasoner` (``build_prompt``: the tool set's system prompt, the twin view
fitted to the runtime's context with the runtime's tokenizer, the quoted question), rendered with the model's own
chat template through :class:`fastreasonseg.reasoning.runtimes.template.ChatTemplate` (the renderer every runtime
uses), ending with the assistant header. The completion is the rollout text (the model's turns and the executor's
``<results>``). Rows are *standard* prompt-completion rows (already-rendered text), so TRL applies no template of its
own and training sees the very tokens llama.cpp sees.

* SFT rows are pre-tokenized: ``input_ids`` = tokens of ``prompt + completion + eos`` (the whole text tokenized at
  once, as the runtimes do) and ``completion_mask`` = 1 on the completion tokens, 0 on the prompt and — with
  ``mask_results`` — on the executor-written ``<results>…</results>`` spans (the model never writes them).
* GRPO rows keep ``prompt`` (rendered text) plus the ground truth in columns for the rewards: ``twin`` (twin JSON),
  ``target_ids``, ``sample_id``, ``reference`` (the teacher's chain, for the reasoning reward), ``query``,
  ``category``, ``level``.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.reasoning.runtimes.base import ChatPrompt
from fastreasonseg.twin.schema import DigitalTwin

__all__ = [
    "Chain",
    "PromptBuilder",
    "TrainSample",
    "build_grpo_dataset",
    "build_sft_dataset",
    "load_samples",
    "read_chains",
    "results_spans",
    "write_chains",
]


@dataclass
class TrainSample:
    """One question on one twin with its ground truth."""

    sample_id: str
    twin: dict[str, Any]
    query: str
    target_ids: list[int]
    reference: str | None = None
    """A reference rollout (synthetic rationale or teacher chain) in the rollout grammar."""
    category: str = ""
    level: int = 0
    split: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def twin_json(self) -> str:
        return json.dumps(self.twin, separators=(",", ":"))

    def load_twin(self) -> DigitalTwin:
        return DigitalTwin.from_dict(self.twin, source=self.sample_id)


def _first(d: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def sample_from_record(rec: dict[str, Any], base: Path | None = None, line: int | None = None) -> TrainSample:
    """A :class:`TrainSample` from a JSONL record (the synthetic generator's, or a hand-written one)."""
    where = f"line {line}" if line is not None else "record"
    twin = _first(rec, "twin")
    if twin is None and "twin_path" in rec:
        p = Path(rec["twin_path"])
        if base is not None and not p.is_absolute():
            p = base / p
        twin = json.loads(p.read_text(encoding="utf-8"))
    if isinstance(twin, str):
        twin = json.loads(twin)
    if not isinstance(twin, dict):
        raise InputError(f"{where}: no twin (expected a 'twin' object or a 'twin_path')")
    query = _first(rec, "query", "question", "text")
    if not isinstance(query, str) or not query.strip():
        raise InputError(f"{where}: no query")
    target = _first(rec, "target_ids", "targets", "answer_ids", "ids")
    if target is None:
        raise InputError(f"{where}: no target ids ('target_ids')")
    reference = _first(rec, "reference", "rationale", "rollout", "chain")
    level = _first(rec, "level", default=0)
    return TrainSample(
        sample_id=str(_first(rec, "sample_id", "uid", "id", default=f"sample-{line}")),
        twin=twin,
        query=query,
        target_ids=[int(i) for i in target],
        reference=reference if isinstance(reference, str) else None,
        category=str(_first(rec, "category", "kind", default="")),
        level=int(level) if isinstance(level, (int, float, str)) and str(level).isdigit() else 0,
        split=str(_first(rec, "split", default="")),
        extra={k: v for k, v in rec.items() if k in ("novel", "template_id", "setting", "plan")},
    )


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}: line {n} is not valid JSON ({exc})") from None
            if not isinstance(rec, dict):
                raise InputError(f"{path}: line {n} is not a JSON object")
            yield n, rec


def samples_file(path: str | os.PathLike[str], split: str = "train") -> Path:
    p = Path(path)
    if p.is_dir():
        for name in (f"{split}.jsonl", f"{split}.json", f"samples_{split}.jsonl"):
            if (p / name).is_file():
                return p / name
        raise InputError(f"{p} has no {split}.jsonl (generate it with `fastreasonseg data synthetic -o {p}`)")
    if not p.is_file():
        raise InputError(f"samples file {p} does not exist")
    return p


def load_samples(
    path: str | os.PathLike[str],
    split: str = "train",
    *,
    limit: int | None = None,
    seed: int = 0,
    skip: int = 0,
) -> list[TrainSample]:
    """Samples of a split: ``path`` is a directory with ``<split>.jsonl`` or a JSONL file. ``skip`` leaves out the
    first samples (file order); with ``limit``, a seeded random subset of the rest."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"samples path must be a path, got {type(path).__name__}")
    if skip < 0:
        raise InputError(f"data.skip must be >= 0, got {skip}")
    p = samples_file(path, split)
    out = [sample_from_record(rec, p.parent, n) for n, rec in _iter_jsonl(p)]
    if not out:
        raise InputError(f"{p} holds no samples")
    if skip:
        if skip >= len(out):
            raise InputError(f"data.skip = {skip} leaves none of the {len(out)} samples of {p}")
        out = out[skip:]
    if limit is not None and limit < len(out):
        rng = random.Random(seed)
        out = rng.sample(out, limit)
    return out


# ---------------------------------------------------------------------------------------------- chains
@dataclass
class Chain:
    """A kept rollout (teacher chain) with its provenance."""

    sample_id: str
    rollout: str
    iou: float
    teacher: str
    seed: int | None = None
    query: str = ""
    prompt_system: str | None = None
    prompt_user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id,
            "rollout": self.rollout,
            "iou": round(float(self.iou), 6),
            "teacher": self.teacher,
            "seed": self.seed,
            "query": self.query,
        }


def write_chains(chains: Iterable[Chain], path: str | os.PathLike[str]) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for c in chains:
            f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, p)
    return n


def read_chains(path: str | os.PathLike[str]) -> list[Chain]:
    """Chains from JSONL; a missing, empty or malformed file is an :class:`InputError` that says what to do."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"chains file {p} does not exist: write it with `fastreasonseg train chains`")
    chains = []
    for n, rec in _iter_jsonl(p):
        missing = [k for k in ("sample_id", "rollout") if not rec.get(k)]
        if missing:
            raise InputError(f"{p}: line {n} has no {', '.join(missing)} (each line needs sample_id and rollout)")
        if not isinstance(rec["rollout"], str):
            raise InputError(f"{p}: line {n}: rollout must be text")
        chains.append(
            Chain(
                sample_id=str(rec["sample_id"]),
                rollout=rec["rollout"],
                iou=float(rec.get("iou", 1.0)),
                teacher=str(rec.get("teacher", "")),
                seed=rec.get("seed"),
                query=str(rec.get("query", "")),
            )
        )
    if not chains:
        raise InputError(
            f"chains file {p} is empty: no chain passed the IoU threshold (sample more rollouts, use a stronger "
            f"teacher, or bootstrap with `fastreasonseg train chains --from-reference`)"
        )
    return chains


# ---------------------------------------------------------------------------------------------- prompts
class _CountingRuntime:
    """What :meth:`Reasoner.prompt` needs from a runtime: a token counter and the context size."""

    name = "prompt-builder"

    def __init__(self, tokenizer: Any, n_ctx: int) -> None:
        self._tok = tokenizer
        self.n_ctx = n_ctx

    def count_tokens(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    def complete(self, *a: Any, **k: Any) -> Any:  # pragma: no cover - never called
        raise RuntimeError("the prompt builder does not generate")


class PromptBuilder:
    """Builds the inference prompt of a sample (``Reasoner.prompt``) and renders it with the chat template."""

    def __init__(self, tokenizer: Any, template: Any, *, n_ctx: int = 2048, config: ReasonerConfig | None = None):
        from fastreasonseg.reasoning.executor import Reasoner

        self.tokenizer = tokenizer
        self.template = template
        self.config = config or ReasonerConfig()
        self.reasoner = Reasoner(_CountingRuntime(tokenizer, n_ctx), self.config)

    def chat_prompt(self, twin: DigitalTwin, query: str) -> ChatPrompt:
        return self.reasoner.prompt(twin, query).prompt

    def render(self, twin: DigitalTwin, query: str, assistant_prefix: str = "") -> str:
        return self.template.render_text(self.chat_prompt(twin, query), assistant_prefix)


_RESULTS_SPAN = re.compile(r"<results>.*?</results>\n?", re.S)


def results_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Character spans of the executor-written ``<results>…</results>`` segments (with their leading line break)."""
    spans = []
    for m in _RESULTS_SPAN.finditer(text):
        start = m.start()
        if start > 0 and text[start - 1] == "\n":
            start -= 1
        spans.append((offset + start, offset + m.end()))
    return spans


def tokenize_example(
    tokenizer: Any, prompt_text: str, completion: str, *, mask_results: bool = True, add_eos: bool = True
) -> dict[str, list[int]]:
    """``input_ids`` and ``completion_mask`` of ``prompt_text + completion (+ eos)``, the whole text tokenized once."""
    eos = tokenizer.eos_token or ""
    full = prompt_text + completion + (eos if add_eos else "")
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    start = len(prompt_text)
    spans = results_spans(completion, start) if mask_results else []
    mask = []
    for a, b in offsets:
        m = 1 if a >= start or (b > start) else 0
        if m and spans and any(a < e and b > s for s, e in spans):
            m = 0
        mask.append(m)
    return {"input_ids": list(ids), "completion_mask": mask}


def build_sft_dataset(
    samples: dict[str, TrainSample] | list[TrainSample],
    chains: list[Chain],
    builder: PromptBuilder,
    *,
    mask_results: bool = True,
    max_length: int | None = None,
) -> Any:
    """A pre-tokenized TRL dataset (``input_ids``, ``completion_mask``) plus text columns for inspection."""
    from datasets import Dataset

    by_id = samples if isinstance(samples, dict) else {s.sample_id: s for s in samples}
    cols = ("input_ids", "completion_mask", "prompt", "completion", "sample_id")
    rows: dict[str, list[Any]] = {k: [] for k in cols}
    unknown = 0
    too_long = 0
    for c in chains:
        s = by_id.get(c.sample_id)
        if s is None:
            unknown += 1
            continue
        prompt_text = builder.render(s.load_twin(), s.query)
        ex = tokenize_example(builder.tokenizer, prompt_text, c.rollout, mask_results=mask_results)
        if max_length is not None and len(ex["input_ids"]) > max_length:
            too_long += 1
            continue
        rows["input_ids"].append(ex["input_ids"])
        rows["completion_mask"].append(ex["completion_mask"])
        rows["prompt"].append(prompt_text)
        rows["completion"].append(c.rollout)
        rows["sample_id"].append(s.sample_id)
    if not rows["input_ids"]:
        raise InputError(
            f"no SFT example could be built: {unknown} chains name samples not in the data, {too_long} are longer "
            f"than max_length={max_length}"
        )
    ds = Dataset.from_dict(rows)
    ds.info.description = json.dumps({"unknown_sample_ids": unknown, "too_long": too_long})
    return ds


def build_grpo_dataset(
    samples: list[TrainSample], builder: PromptBuilder, references: dict[str, str] | None = None
) -> Any:
    """A standard prompt dataset for ``GRPOTrainer`` with the ground truth in columns for the rewards."""
    from datasets import Dataset

    refs = references or {}
    rows: dict[str, list[Any]] = {
        k: [] for k in ("prompt", "sample_id", "twin", "target_ids", "reference", "query", "category", "level")
    }
    for s in samples:
        rows["prompt"].append(builder.render(s.load_twin(), s.query))
        rows["sample_id"].append(s.sample_id)
        rows["twin"].append(s.twin_json())
        rows["target_ids"].append(list(s.target_ids))
        rows["reference"].append(refs.get(s.sample_id) or s.reference or "")
        rows["query"].append(s.query)
        rows["category"].append(s.category)
        rows["level"].append(int(s.level))
    if not rows["prompt"]:
        raise InputError("no samples for GRPO")
    return Dataset.from_dict(rows)
