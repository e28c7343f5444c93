"""``fastreasonseg ask`` (a question about a saved twin) and ``fastreasonseg segment`` (image/video + question)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from fastreasonseg.cli.common import REASONER_HELP, console, fail


def _print_result(result, as_json: bool, out: Path | None) -> None:
    if as_json:
        d = result.to_dict()
        if out is not None:
            d["output_dir"] = str(out)
        typer.echo(json.dumps(d))
        return
    console.print("[bold]rollout[/]", highlight=False)
    console.print(result.reasoning, markup=False, highlight=False)
    if result.no_target:
        diag = result.rollout.diagnostic
        console.print("[yellow]no target[/]" + (f": {escape(diag)}" if diag else ""), highlight=False)
    else:
        labels = result.labels
        console.print(
            "[bold green]answer:[/] " + ", ".join(f"{i} ({escape(labels.get(i, '?'))})" for i in result.ids),
            highlight=False,
        )
    for note in result.rollout.notes:
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False)
    r = result.rollout
    console.print(
        f"[dim]{r.prompt_tokens} prompt tokens ({r.cached_tokens} cached), {r.completion_tokens} generated; "
        f"prefill {r.prefill_ms:.0f} ms, decode {r.decode_ms:.0f} ms, total {r.total_ms:.0f} ms[/]",
        highlight=False,
    )
    if out is not None:
        console.print(f"wrote {escape(str(out))}/ (masks/, overlay, masks.coco.json, result.json)", highlight=False)


FORCE_HELP = (
    "Replace files in OUTPUT that fastreasonseg did not write there (its own earlier result in OUTPUT is replaced "
    "without this)."
)


def _prepare_out(out: Path | None, files: list[str] | None, force: bool) -> bool:
    """Check OUTPUT before any model loads (see :func:`fastreasonseg.api.prepare_output_dir`); True when it holds an
    earlier result of fastreasonseg's own that saving will replace."""
    from fastreasonseg.api import prepare_output_dir

    if out is None:
        return False
    return bool(prepare_output_dir(out, files, overwrite=force))


def _replacing(out: Path | None, replaced: bool, as_json: bool) -> None:
    if replaced and not as_json:
        console.print(f"[dim]replacing the earlier result in {escape(str(out))}/[/]", highlight=False)


def _result_dirs(names: list[str], out: Path | None) -> dict[str, Path | None]:
    """One output folder per image / twin under ``out``: the file's stem (its full name when two stems collide)."""
    stems = [_stem(n) for n in names]
    unique = len(set(stems)) == len(stems)
    return {n: (None if out is None else out / (st if unique else n)) for n, st in zip(names, stems, strict=True)}


def _stem(name: str) -> str:
    for suffix in (".twin.json", ".json"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def _print_many(results: dict[str, tuple[object, Path | None]], as_json: bool) -> None:
    if as_json:
        items = []
        for name, (result, out) in results.items():
            d = {"name": name, **result.to_dict()}
            if out is not None:
                d["output_dir"] = str(out)
            items.append(d)
        typer.echo(json.dumps({"results": items}))
        return
    for name, (result, out) in results.items():
        console.rule(escape(name))
        _print_result(result, False, out)


def ask(
    twin: str = typer.Argument(
        ...,
        help="Twin JSON file, a folder of twin JSON files (one answer each), or 'example' for the example twin "
        "shipped with the package.",
    ),
    query: str = typer.Argument(..., help='The question, e.g. "what would I drink coffee from?"'),
    out: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Write masks, overlay, masks.coco.json and result.json here (a folder of twins: OUTPUT/<twin name>/).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help='Print one JSON object (ids, rollout, timings...; a folder: {"results": [...]}).'
    ),
    reasoner: str | None = typer.Option(None, "--reasoner", help=REASONER_HELP),
    max_rounds: int = typer.Option(2, "--max-rounds", min=0, help="Most tool rounds."),
    unconstrained: bool = typer.Option(False, "--unconstrained", help="Decode without the rollout grammar."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Ask a question about a saved twin: prints the reasoning and the answer, writes masks and an overlay."""
    from fastreasonseg.api import FastReasonSeg, result_files
    from fastreasonseg.reasoning.config import ReasonerConfig
    from fastreasonseg.reasoning.prompt import check_query

    check_query(query)  # empty query: clear error before any model loads
    frs = FastReasonSeg(reasoner, reasoner_config=ReasonerConfig(max_rounds=max_rounds, constrained=not unconstrained))
    folder = Path(twin)
    if twin != "example" and folder.is_dir():
        files = sorted((p for p in folder.iterdir() if p.suffix == ".json" and p.is_file()), key=lambda p: p.name)
        if not files:
            fail(f"{folder} holds no twin JSON files (*.json)")
        twins = {p.name: frs.load_twin(p) for p in files}  # every twin validated before any model loads
        dirs = _result_dirs(list(twins), out)
        for name, t in twins.items():
            _replacing(dirs[name], _prepare_out(dirs[name], result_files(t), force), as_json)
        results = {}
        for name, t in twins.items():
            result = frs.ask(t, query)
            if dirs[name] is not None:
                result.save(dirs[name], overwrite=force)
            results[name] = (result, dirs[name])
        _print_many(results, as_json)
        return
    t = frs.load_twin(twin)
    replaced = _prepare_out(out, result_files(t), force)
    _replacing(out, replaced, as_json)
    result = frs.ask(t, query)
    if out is not None:
        result.save(out, overwrite=force)
    _print_result(result, as_json, out)


def segment(
    source: str = typer.Argument(
        ..., help="Image file, video file, folder of frames (one video), or with --images a folder of images."
    ),
    query: str = typer.Argument(..., help="The question."),
    out: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Write masks, overlay, masks.coco.json, result.json and twin.json here (--images: OUTPUT/<image name>/).",
    ),
    as_json: bool = typer.Option(False, "--json", help='Print one JSON object (--images: {"results": [...]}).'),
    images: bool = typer.Option(
        False, "--images", help="SOURCE is a folder of independent images (any sizes): one twin and answer each."
    ),
    reasoner: str | None = typer.Option(None, "--reasoner", help=REASONER_HELP),
    segmenter: str | None = typer.Option(None, "--segmenter", help="SAM-2 hub id or local directory."),
    depth: str | None = typer.Option(None, "--depth", help="Depth-Anything-V2 hub id or local directory."),
    labeller: str | None = typer.Option(None, "--labeller", help="OWLv2 hub id or local directory."),
    stride: int = typer.Option(1, "--stride", min=1, help="Process every N-th video frame."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1),
    threshold: float | None = typer.Option(None, "--threshold", min=0.0, max=1.0, help="Labeller score threshold."),
    device: str = typer.Option("cpu", "--device"),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Build the twin of an image or video and answer a question about it, in one go."""
    from fastreasonseg.api import FastReasonSeg
    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.reasoning.prompt import check_query

    check_query(query)
    cfg = PerceptionConfig(stride=stride, max_frames=max_frames, device=device)
    if threshold is not None:
        cfg.box_threshold = threshold
    for name, value in (("segmenter", segmenter), ("depth", depth), ("labeller", labeller)):
        if value is not None:
            setattr(cfg, name, value)
    frs = FastReasonSeg(reasoner, perception=cfg)
    if images:
        from fastreasonseg.perception.media import list_frame_files

        folder = Path(source)
        if not folder.is_dir():
            fail(f"--images needs a folder of images, got {folder}")
        names = [f.name for f in list_frame_files(folder)]
        if not names:
            fail(f"{folder}: the folder contains no image files")
        dirs = _result_dirs(names, out)
        for name in names:
            _replacing(dirs[name], _prepare_out(dirs[name], None, force), as_json)
        results = {}
        for name in names:
            result = frs.segment(folder / name, query, progress=not as_json)
            if dirs[name] is not None:
                result.save(dirs[name], overwrite=force, with_twin=True)
            results[name] = (result, dirs[name])
        _print_many(results, as_json)
        return
    replaced = _prepare_out(out, None, force)
    _replacing(out, replaced, as_json)
    result = frs.segment(source, query, progress=not as_json)
    if out is not None:
        result.save(out, overwrite=force, with_twin=True)
    _print_result(result, as_json, out)
