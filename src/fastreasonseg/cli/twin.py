"""``fastreasonseg twin build | validate | show | oracle``."""

from __future__ import annotations

from pathlib import Path

import typer

from fastreasonseg.cli.common import check_output_file, console, fail

twin_app = typer.Typer(no_args_is_help=True)

TWIN_HELP = "Twin JSON file, or 'example' for the example twin shipped with the package."


@twin_app.command("build")
def build(
    input: str = typer.Argument(..., help="Image file, video file, folder of frames (one video), or --images folder."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Where to write the twin JSON (--images: a folder for <image name>.twin.json)."
    ),
    images: bool = typer.Option(
        False, "--images", help="INPUT is a folder of independent images (any sizes): one twin each."
    ),
    segmenter: str | None = typer.Option(None, "--segmenter", help="SAM-2 hub id or local directory."),
    depth: str | None = typer.Option(None, "--depth", help="Depth-Anything-V2 hub id or local directory."),
    labeller: str | None = typer.Option(None, "--labeller", help="OWLv2 hub id or local directory."),
    stride: int = typer.Option(1, "--stride", min=1, help="Process every N-th video frame."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop after N processed frames."),
    mode: str = typer.Option("detect", "--mode", help="detect (labeller boxes -> SAM-2, fast) or grid."),
    vocab: list[str] = typer.Option([], "--vocab", help="Extra object names for the labeller (repeatable)."),
    threshold: float | None = typer.Option(None, "--threshold", min=0.0, max=1.0, help="Labeller score threshold."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
    backend: str = typer.Option("auto", "--backend", help="Encoder runtime: auto, torch, onnx or openvino."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, int8 (onnx), fp16/bf16 (GPU)."),
    preset: str = typer.Option(
        "paper", "--preset", help="paper (the paper's models) or fast (lighter models, less accurate)."
    ),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest frame accepted, width x height."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite OUTPUT if it exists."),
) -> None:
    """Run perception on an image or video and write its digital twin."""
    from fastreasonseg.api import check_video_folder, ensure_writable_dir
    from fastreasonseg.perception.media import list_frame_files

    sources: dict[Path, str] = {}
    if images:
        folder = Path(input)
        if not folder.is_dir():
            fail(f"--images needs a folder of images, got {folder}")
        files = list_frame_files(folder)
        if not files:
            fail(f"{folder}: the folder contains no image files")
        stems = [f.stem for f in files]
        unique = len(set(stems)) == len(stems)
        sources = {output / f"{f.stem if unique else f.name}.twin.json": str(f) for f in files}
        taken = [str(p) for p in sources if p.exists() or p.is_symlink()]
        if taken and not force:
            fail(f"{len(taken)} twin file(s) already exist ({', '.join(taken[:5])}); pass --force to overwrite them")
        ensure_writable_dir(output)
    else:
        check_output_file(output, force)
        if Path(input).is_dir():
            check_video_folder(Path(input))
        sources = {output: input}
    if mode not in ("detect", "grid"):
        fail(f"--mode must be 'detect' or 'grid', got {mode!r}")
    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.perception.builder import TwinBuilder

    if preset not in ("paper", "fast"):
        fail(f"--preset must be 'paper' or 'fast', got {preset!r}")
    cfg = PerceptionConfig.preset(
        preset,
        stride=stride,
        max_frames=max_frames,
        mode=mode,
        vocabulary=list(vocab),
        device=device,
        backend=backend,
        precision=precision,
        max_pixels=max_pixels,
    )
    if threshold is not None:
        cfg.box_threshold = threshold
    if segmenter is not None:
        cfg.segmenter = segmenter
    if depth is not None:
        cfg.depth = depth
    if labeller is not None:
        cfg.labeller = labeller
    builder = TwinBuilder(cfg)
    for path, src in sources.items():
        twin = builder.build(src, progress=True)
        twin.save(path)
        t = twin.meta.get("timings_ms", {})
        console.print(
            f"wrote {path}: {len(twin.frames)} frame(s), {twin.num_instances()} instances, "
            f"{len(twin.track_ids)} tracks" + (f", {t.get('total', 0):.0f} ms" if t else ""),
            markup=False,
            highlight=False,
        )


@twin_app.command("validate")
def validate(path: str = typer.Argument(..., help=TWIN_HELP)) -> None:
    """Check a twin file; exit 0 when valid, 1 with every problem listed when not."""
    from fastreasonseg.api import twin_path
    from fastreasonseg.twin import load_twin

    twin = load_twin(twin_path(path))  # raises TwinValidationError -> message + exit 1 in cli.common.main
    console.print(
        f"{path}: valid twin v{twin.version} ({twin.source.kind}, {len(twin.frames)} frame(s), "
        f"{twin.num_instances()} instances, {len(twin.track_ids)} tracks)",
        markup=False,
        highlight=False,
    )


@twin_app.command("show")
def show(
    path: str = typer.Argument(..., help=TWIN_HELP),
    max_instances: int = typer.Option(60, "--max-instances", min=1, help="Most instances/tracks listed."),
    frame: int | None = typer.Option(None, "--frame", help="Video: show only this frame index."),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", help="Tokenizer (hub id, directory or GGUF file) to count tokens with."
    ),
) -> None:
    """Print the compact text view the LLM reads, and its token count."""
    from fastreasonseg.api import twin_path
    from fastreasonseg.twin import load_twin
    from fastreasonseg.twin.tokens import view_token_stats
    from fastreasonseg.twin.view import ViewOptions, twin_view

    twin = load_twin(twin_path(path))
    if frame is not None and frame not in [f.index for f in twin.frames]:
        fail(f"frame {frame} is not in {path} (frames {[f.index for f in twin.frames][:8]}...)")
    opts = ViewOptions(max_instances=max_instances, frame=frame)
    text = twin_view(twin, opts)
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    stats = view_token_stats(twin, opts, tokenizer)
    unit = "track" if twin.is_video and frame is None else "instance"
    per = f", {stats.per_line:.1f} per {unit} line" if stats.lines else ""
    console.print(f"[dim]{stats.total} tokens ({stats.tokenizer}): header {stats.header}{per}[/]", highlight=False)


@twin_app.command("oracle")
def oracle(
    source: str = typer.Argument(..., help="DAVIS sequence folder pair or COCO instances JSON (see --format)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the twin JSON."),
    format: str = typer.Option("davis", "--format", help="davis or coco."),
    sequence: str | None = typer.Option(None, "--sequence", help="DAVIS: sequence name under SOURCE."),
    image_id: int | None = typer.Option(None, "--image-id", help="COCO: image id."),
    images: Path | None = typer.Option(
        None, "--images", help="COCO: the images folder; the twin then records its image, so overlays are drawn on it."
    ),
    stride: int = typer.Option(1, "--stride", min=1),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite OUTPUT if it exists."),
) -> None:
    """Build a twin from ground-truth annotations (the "oracle twin")."""
    from fastreasonseg.perception.oracle import oracle_from_coco, oracle_from_davis

    check_output_file(output, force)
    if format == "davis":
        if sequence is None:
            fail("--sequence is required with --format davis")
        twin = oracle_from_davis(source, sequence, stride=stride)
    elif format == "coco":
        if image_id is None:
            fail("--image-id is required with --format coco")
        twin = oracle_from_coco(source, image_id)
        if images is not None:
            image = images / twin.source.name
            if not image.is_file():
                fail(f"image {twin.source.name} of image id {image_id} is not in {images}")
            twin.meta["source_path"] = str(image.resolve())
    else:
        fail(f"--format must be davis or coco, got {format!r}")
    twin.save(output)
    console.print(f"wrote {output}: {len(twin.frames)} frame(s), {twin.num_instances()} instances")
