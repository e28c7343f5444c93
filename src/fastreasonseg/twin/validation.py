"""Checks of a twin that span fields, and readable messages for schema errors.

Every message names where the problem is as ``frame F (index I), instance id N, field 'x'``, so a
user can find it in a file of thousands of instances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fastreasonseg.twin.masks import rle_area, rle_is_valid

if TYPE_CHECKING:
    from fastreasonseg.twin.schema import DigitalTwin

_BOX_TOLERANCE = 1e-3


def _where(data: Any, loc: tuple) -> str:
    """Turn a pydantic location ``('frames', 2, 'instances', 0, 'box', 1)`` into words."""
    parts: list[str] = []
    rest = list(loc)
    frames = data.get("frames") if isinstance(data, dict) else None
    if len(rest) >= 2 and rest[0] == "frames" and isinstance(rest[1], int):
        fpos = rest[1]
        frame = frames[fpos] if isinstance(frames, list) and fpos < len(frames) else None
        idx = frame.get("index") if isinstance(frame, dict) else None
        parts.append(f"frame {fpos}" + (f" (index {idx})" if isinstance(idx, int) else ""))
        rest = rest[2:]
        if len(rest) >= 2 and rest[0] == "instances" and isinstance(rest[1], int):
            ipos = rest[1]
            insts = frame.get("instances") if isinstance(frame, dict) else None
            inst = insts[ipos] if isinstance(insts, list) and ipos < len(insts) else None
            iid = inst.get("id") if isinstance(inst, dict) else None
            parts.append(f"instance id {iid}" if iid is not None else f"instance #{ipos} (no id)")
            rest = rest[2:]
    if rest:
        field = ".".join(str(p) for p in rest)
        parts.append(f"field '{field}'")
    return ", ".join(parts) if parts else "top level"


def describe_pydantic_errors(exc: ValidationError, data: Any) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            msg = "unknown field (not part of twin version 1)"
        elif kind == "missing":
            msg = "required field is missing"
        else:
            msg = err.get("msg", "invalid value")
            if "input" in err and kind not in ("model_type",):
                shown = repr(err["input"])
                if len(shown) > 60:
                    shown = shown[:57] + "..."
                msg += f" (got {shown})"
        out.append(f"{_where(data, loc)}: {msg}")
    return out


def check_twin(twin: DigitalTwin) -> list[str]:
    """Cross-field checks pydantic cannot do alone; returns every problem found (empty = valid)."""
    problems: list[str] = []
    src = twin.source
    if not twin.frames:
        problems.append("field 'frames': a twin needs at least one frame")
    if src.kind == "image" and len(twin.frames) > 1:
        problems.append(f"field 'frames': an image twin has exactly one frame, got {len(twin.frames)}")
    if len(twin.frames) > src.num_frames:
        problems.append(
            f"field 'source.num_frames': {src.num_frames} is less than the {len(twin.frames)} frames listed"
        )
    prev_index = -1
    prev_time = -1.0
    for fpos, fr in enumerate(twin.frames):
        fwhere = f"frame {fpos} (index {fr.index})"
        if fr.index <= prev_index:
            problems.append(f"{fwhere}, field 'index': frame indices must increase, previous was {prev_index}")
        if fr.index >= src.num_frames:
            problems.append(f"{fwhere}, field 'index': beyond source.num_frames = {src.num_frames}")
        if fr.time < prev_time:
            problems.append(f"{fwhere}, field 'time': {fr.time} is earlier than the previous frame's {prev_time}")
        prev_index, prev_time = fr.index, fr.time
        seen: set[int] = set()
        for inst in fr.instances:
            where = f"{fwhere}, instance id {inst.id}"
            if inst.id in seen:
                problems.append(f"{where}, field 'id': duplicate id in this frame")
            seen.add(inst.id)
            problems.extend(f"{where}, {p}" for p in _check_instance(inst, src.width, src.height))
    return problems


def _check_instance(inst: Any, w: int, h: int) -> list[str]:
    """Problems of one instance in a ``w`` x ``h`` frame, each starting with the field it is about."""
    out: list[str] = []
    x0, y0, x1, y1 = inst.box
    t = _BOX_TOLERANCE
    if x0 < -t or y0 < -t or x1 > w + t or y1 > h + t:
        out.append(f"field 'box': {[round(c, 2) for c in inst.box]} is outside the {w}x{h} frame")
    if tuple(inst.mask.size) != (h, w):
        out.append(
            f"field 'mask.size': {list(inst.mask.size)} does not match the frame size [height, width] = [{h}, {w}]"
        )
        return out
    rle = inst.mask.to_dict()
    bad = rle_is_valid(rle)
    if bad:
        out.append(f"field 'mask.counts': {bad}")
        return out
    area = rle_area(rle)
    if area != inst.area:
        out.append(f"field 'area': {inst.area} but the mask has {area} pixels")
    if inst.depth is not None:
        d = inst.depth
        if not (d.min - 1e-6 <= d.mean <= d.max + 1e-6):
            out.append(f"field 'depth': mean {d.mean} is not between min {d.min} and max {d.max}")
    for k, alt in enumerate(inst.alt_labels):
        if not alt[0] or not (0.0 <= alt[1] <= 1.0):
            out.append(f"field 'alt_labels.{k}': expected [name, score in 0..1], got {list(alt)}")
    return out
