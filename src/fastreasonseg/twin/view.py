"""The compact text view of a twin: the only thing the LLM reads.

Small LLM tokenizers (SmolLM2, Qwen3) spend one token per digit, so every number is an integer of
at most two digits: boxes and areas in percent of the frame, depth as one digit 0 (nearest) .. 9
(farthest), scores in percent. A header explains the columns once. A box is written as its centre and
size (``cx,cy wxh``), not its corners: "left of", "the leftmost", "between" and the video's centre
motion are all about centres, so a small model can read them off the line instead of averaging two
edges (a 135M student trained on corner boxes wrote centres several points off). Example for an image::

    image 640x427, 3 objects. Columns: id label(score%) [alt] centre x,y size wxh (% of frame) area% depth(..)
    1 mug(81) cup 22,54 12x17 2 3
    2 table(64) 50,77 99x45 41 6
    3 person(93) 76,52 32x94 24 4

A video lists one line per track: frames where it is seen, the box where it first appears, area,
depth, then ``>`` the centre displacement (dx,dy in % of the frame), last depth and speed
(% of the frame per second)::

    video 854x480, 50 frames at 24 fps (2.0 s), 2 tracks. Columns: ...
    1 dog(88) f0-49 20,60 20x40 8 4 >+52,-3 d6 v26

Twins with more instances than ``max_instances`` list the largest ones and say how many were left
out, so the view always fits the model's context.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastreasonseg.twin.schema import DigitalTwin, Instance


@dataclass(frozen=True)
class ViewOptions:
    """How much of the twin the view shows."""

    max_instances: int = 60
    """Most instances (image) or tracks (video) listed; the rest are summarised in one line."""
    alt_labels: int = 1
    """Alternative labels shown per instance (0 to hide them)."""
    frame: int | None = None
    """For a video, view only this frame index (as if it were an image); ``None`` = per-track summary."""
    legend: bool = True
    """Explain the columns in the header. A prompt that explains them once in its (cached) system
    message turns this off: see :func:`view_legend`."""


def pct(v: float) -> int:
    """A fraction in [0, 1] as the view writes it: an integer percent, clipped to 0..99."""
    return max(0, min(99, int(round(v * 100))))


def box_centre_size(box: tuple[float, float, float, float], w: int, h: int) -> tuple[int, int, int, int]:
    """A pixel box ``x0,y0,x1,y1`` as the view writes it: centre x, centre y, width, height in % of the frame."""
    x0, y0, x1, y1 = box
    return pct((x0 + x1) / 2 / w), pct((y0 + y1) / 2 / h), pct((x1 - x0) / w), pct((y1 - y0) / h)


def depth_digit(mean: float) -> int:
    """Map relative depth in [0, 1] to one digit 0 (nearest) .. 9 (farthest)."""
    return max(0, min(9, int(mean * 10)))


def _label(inst_label: str, score: float | None, alts: list[tuple[str, float]], n_alt: int) -> str:
    s = inst_label if score is None else f"{inst_label}({pct(score)})"
    shown = [a for a, _ in alts[:n_alt] if a != inst_label]
    if shown:
        s += " " + "/".join(shown)
    return s


def _box(box: tuple[float, float, float, float], w: int, h: int) -> str:
    cx, cy, bw, bh = box_centre_size(box, w, h)
    return f"{cx},{cy} {bw}x{bh}"


def _area(area: float, w: int, h: int) -> str:
    frac = area / (w * h)
    return str(max(0, min(99, int(round(frac * 100)))))


_IMAGE_COLUMNS = "id label(score%) [alt] centre x,y size wxh (% of frame) area% depth(0 near..9 far)"
_VIDEO_COLUMNS = (
    "id label(score%) [alt] f<first>-<last frame> first centre x,y size wxh (% of frame) area% depth(0 near..9 far)"
    " >dx,dy centre motion (% of frame) d<last depth> v<speed %/s>"
)


def instance_line(inst: Instance, w: int, h: int, opts: ViewOptions = ViewOptions()) -> str:
    """One line of the image view for one instance."""
    parts = [
        str(inst.id),
        _label(inst.label, inst.score, inst.alt_labels, opts.alt_labels),
        _box(inst.box, w, h),
    ]
    parts.append(_area(inst.area, w, h))
    if inst.depth is not None:
        parts.append(str(depth_digit(inst.depth.mean)))
    return " ".join(parts)


def _frame_view(twin: DigitalTwin, frame_index: int, opts: ViewOptions) -> str:
    h, w = twin.size
    fr = twin.frame(frame_index)
    insts = sorted(fr.instances, key=lambda i: -i.area)
    shown = sorted(insts[: opts.max_instances], key=lambda i: i.id)
    what = "image" if not twin.is_video else f"video frame {frame_index}"
    legend = f" Columns: {_IMAGE_COLUMNS}" if opts.legend else ""
    lines = [f"{what} {w}x{h}, {len(insts)} objects.{legend}"]
    lines += [instance_line(i, w, h, opts) for i in shown]
    if len(insts) > len(shown):
        lines.append(f"(+{len(insts) - len(shown)} smaller objects not listed; ids {_id_ranges(insts[len(shown) :])})")
    if not insts:
        lines.append("(no objects detected)")
    return "\n".join(lines)


def _id_ranges(insts: list[Instance]) -> str:
    ids = sorted(i.id for i in insts)
    if len(ids) <= 6:
        return ",".join(map(str, ids))
    return f"{ids[0]}..{ids[-1]}"


def _video_view(twin: DigitalTwin, opts: ViewOptions) -> str:
    h, w = twin.size
    src = twin.source
    tracks = twin.track_summaries()
    duration = twin.frames[-1].time - twin.frames[0].time if twin.frames else 0.0
    timing = f" at {src.fps:g} fps ({duration:.1f} s)" if src.fps > 0 else ""
    head = f"video {w}x{h}, {len(twin.frames)} frames{timing}, {len(tracks)} tracks. Columns: {_VIDEO_COLUMNS}"
    ranked = sorted(tracks, key=lambda t: -t.mean_area * t.num_frames)
    shown = sorted(ranked[: opts.max_instances], key=lambda t: t.id)
    lines = [head]
    for t in shown:
        _first_frame, first = twin.instances_of(t.id)[0]
        parts = [
            str(t.id),
            _label(t.label, first.score, first.alt_labels, opts.alt_labels),
            f"f{t.first_frame}-{t.last_frame}",
            _box(first.box, w, h),
            _area(t.mean_area * w * h, w, h),
        ]
        if t.depth_first is not None:
            parts.append(str(depth_digit(t.depth_first)))
        dx, dy = (int(round(v * 100)) for v in t.displacement)
        motion = f">{dx:+d},{dy:+d}"
        if t.depth_last is not None:
            motion += f" d{depth_digit(t.depth_last)}"
        motion += f" v{int(round(t.speed * 100))}"
        parts.append(motion)
        lines.append(" ".join(parts))
    if len(tracks) > len(shown):
        hidden = [t.id for t in ranked[len(shown) :]]
        lines.append(f"(+{len(hidden)} smaller tracks not listed; ids {min(hidden)}..{max(hidden)})")
    if not tracks:
        lines.append("(no objects detected)")
    return "\n".join(lines)


def view_legend(video: bool) -> str:
    """The column legend of the image (``video=False``) or video view, for a system prompt."""
    return _VIDEO_COLUMNS if video else _IMAGE_COLUMNS


def twin_view(twin: DigitalTwin, options: ViewOptions | None = None) -> str:
    """The compact text the reasoner reads for ``twin`` (see the module docstring for the format)."""
    opts = options or ViewOptions()
    if not twin.is_video or len(twin.frames) == 1:
        return _frame_view(twin, twin.frames[0].index, opts)
    if opts.frame is not None:
        return _frame_view(twin, opts.frame, opts)
    return _video_view(twin, opts)
