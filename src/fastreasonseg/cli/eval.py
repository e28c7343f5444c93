"""``fastreasonseg eval masks`` (score a folder of predicted masks); the benchmark runner adds its commands here."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from fastreasonseg.cli.common import console, err_console, fail, progress_bar
from fastreasonseg.errors import InputError

eval_app = typer.Typer(no_args_is_help=True)

_SHOW = 5  # file names listed per kind of problem


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOW])
    more = len(paths) - _SHOW
    return shown + (f" (and {more} more)" if more > 0 else "")


@eval_app.command("masks")
def masks(
    pred: Path = typer.Option(..., "--pred", help="Predicted masks: PRED/<sequence>/<frame>.png, non-zero = object."),
    gt: Path = typer.Option(
        ..., "--gt", help="Ground truth in the same layout (e.g. DAVIS Annotations/480p, or a DAVIS root)."
    ),
    sequence: list[str] = typer.Option([], "--sequence", "-s", help="Score only this sequence (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any predicted frame is missing or unusable."),
) -> None:
    """Score a DAVIS-layout folder of predicted masks: J, F and J&F per sequence and their means.

    Every ground-truth frame is scored. A predicted frame that is missing, unreadable or of the wrong size is
    scored as an empty mask and reported. J&F = (J + F) / 2; the overall scores are means over sequences.
    """
    from fastreasonseg.eval.folders import score_mask_folders

    bar = progress_bar("eval masks")
    try:
        with bar:
            task = bar.add_task("", total=None)

            def progress(seq: str, done: int, total: int) -> None:
                bar.update(task, description=escape(seq), completed=done, total=total)

            report = score_mask_folders(pred, gt, sequences=sequence or None, progress=progress)
    except InputError as exc:
        fail(str(exc))
        return

    missing = report.missing_frames
    invalid = report.invalid_frames
    if report.missing_sequences:
        _warn(
            f"{len(report.missing_sequences)} sequence(s) have no folder in {report.pred_dir}; their frames are "
            f"scored as empty masks: {_listing(report.missing_sequences)}"
        )
    if missing:
        _warn(f"{len(missing)} predicted frame(s) missing, scored as empty masks: {_listing(missing)}")
    for path, reason in invalid[:_SHOW]:
        _warn(f"cannot use predicted mask {path}: {reason}; scored as an empty mask")
    if len(invalid) > _SHOW:
        _warn(f"... and {len(invalid) - _SHOW} more unusable predicted masks")
    if report.extra_sequences:
        _warn(f"ignored {len(report.extra_sequences)} predicted sequence(s) not in the ground truth")

    if as_json:
        from fastreasonseg.eval.runner import json_safe

        typer.echo(json.dumps(json_safe(report.as_dict()), indent=None, sort_keys=False))
    else:
        console.print(f"predictions {report.pred_dir}\nground truth {report.gt_dir}", highlight=False)
        table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, show_edge=False)
        width = max([len(n) for n in report.sequences] + [8])
        table.add_column("sequence", no_wrap=True, min_width=width)
        for col in ("frames", "J", "F", "J&F", "J rec", "J dec", "missing"):
            table.add_column(col, justify="right")
        for name, s in report.sequences.items():
            d = s.as_dict()
            problems = d["missing_frames"] + d["invalid_frames"]
            table.add_row(
                name,
                str(d["frames"]),
                f"{d['J']:.3f}",
                f"{d['F']:.3f}",
                f"{d['J&F']:.3f}",
                f"{d['J_recall']:.3f}",
                f"{d['J_decay']:.3f}",
                str(problems) if problems else "",
            )
        table.add_section()
        table.add_row(
            "mean",
            str(report.num_frames),
            f"{report.J:.3f}",
            f"{report.F:.3f}",
            f"{report.JF:.3f}",
            "",
            "",
            str(len(missing) + len(invalid)) if missing or invalid else "",
        )
        console.print(table)
        console.print(f"J&F {report.JF:.4f}  J {report.J:.4f}  F {report.F:.4f}")
    if strict and (missing or invalid):
        fail(f"{len(missing)} missing and {len(invalid)} unusable predicted frame(s) (--strict)")


@eval_app.command("run")
def run(
    dataset: str = typer.Option(
        ..., "--dataset", "-d", help="synthetic, devset, reasonseg, llmseg40k, refcocog, revos, mevis or davis."
    ),
    root: Path = typer.Option(..., "--root", help="Dataset root (synthetic: folder with <split>.jsonl, or the file)."),
    split: str = typer.Option("test", "--split", help="Split to evaluate."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (rerun with the same folder to resume)."),
    predictor: str = typer.Option("reasoner", "--predictor", "-p", help="reasoner, embedding or oracle."),
    reasoner: str | None = typer.Option(
        None, "--reasoner", help="Reasoner spec for --predictor reasoner (default: the project's default reasoner)."
    ),
    adapter: str | None = typer.Option(None, "--adapter", help="LoRA adapter for the reasoner (GGUF or PEFT dir)."),
    twins: str = typer.Option("oracle", "--twins", help="oracle (from the annotations) or perception (models)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Videos: score every N-th frame."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Videos: score at most N frames."),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Evaluate only the first N queries."),
    device: str = typer.Option("cpu", "--device", help="Perception device (--twins perception)."),
    images: Path | None = typer.Option(None, "--images", help="Images folder (RefCOCOg / LLM-Seg40K)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object instead of tables."),
) -> None:
    """Evaluate a predictor on a dataset split: gIoU / cIoU (images), J / F / J&F (videos), efficiency.

    Per-query predictions go to OUTPUT/predictions.jsonl as they finish; OUTPUT/summary.json is rewritten at the end.
    Rerunning with the same OUTPUT skips finished queries. Samples that cannot be read are skipped and reported.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fastreasonseg.eval.runner import EvalConfig, print_summary, run_eval

    perception = None
    if twins == "perception":
        from fastreasonseg.config import PerceptionConfig

        perception = PerceptionConfig(device=device)
    config = EvalConfig(
        dataset=dataset,
        root=str(root),
        split=split,
        predictor=predictor,
        reasoner=reasoner,
        adapter=adapter,
        twins=twins,
        perception=perception,
        stride=stride,
        max_frames=max_frames,
        limit=limit,
        dataset_options={"images": str(images)} if images is not None else {},
    )
    bar = Progress(
        TextColumn("[bold]eval[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    state = {"task": None, "done": 0, "resumed": 0, "skipped": 0}

    def progress(event: str, total: int | None) -> None:
        if event == "start":
            state["task"] = bar.add_task(f"{dataset}/{split}", total=total, status="")
            return
        state[event] = state.get(event, 0) + 1
        status = f"new {state['done']} resumed {state['resumed']} skipped {state['skipped']}"
        bar.update(state["task"], advance=0 if event == "skipped" else 1, status=status)

    try:
        with bar:
            summary = run_eval(config, output, progress=progress)
    except InputError as exc:
        fail(str(exc))
        return
    if as_json:
        from fastreasonseg.eval.runner import json_safe

        typer.echo(json.dumps(json_safe(summary)))
    else:
        print_summary(summary, console)
        console.print(f"wrote {output / 'predictions.jsonl'} and {output / 'summary.json'}", highlight=False)
