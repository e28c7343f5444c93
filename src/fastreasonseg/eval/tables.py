"""Console tables of a summary (rich): the scores overall and per group, the counts, then the efficiency block."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["TABLE_GROUPS", "print_summary"]

TABLE_GROUPS = ("split", "category", "level", "targets", "media", "query", "novelty")
"""The breakdowns printed, in this order (those a summary has)."""


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def _scores_table(summary: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    rows = [("overall", "all", summary["overall"])]
    for key in TABLE_GROUPS:
        for val, d in summary.get("groups", {}).get(key, {}).items():
            rows.append((key, val, d))
    has_video = any((d.get("videos") or 0) > 0 for _, _, d in rows)
    cfg = summary.get("config") or {}
    title = (
        f"{cfg.get('dataset', '?')} / {cfg.get('split', '?')} - {cfg.get('predictor', '?')} on {cfg.get('twins')} twins"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("group", "value", "n", "gIoU", "cIoU"):
        table.add_column(col, justify="left" if col in ("group", "value") else "right")
    video_cols = ("videos", "J", "F", "J&F") if has_video else ()
    for col in (*video_cols, "format%", "none%", "exact%"):
        table.add_column(col, justify="right")
    last = None
    for key, val, d in rows:
        first = key != last
        if first and last is not None:
            table.add_section()
        last = key
        row = [key if first else "", str(val), str(d.get("count", 0)), _fmt(d.get("gIoU")), _fmt(d.get("cIoU"))]
        if has_video:
            row += [str(d.get("videos") or 0), _fmt(d.get("J")), _fmt(d.get("F")), _fmt(d.get("J&F"))]
        row += [_fmt(d.get("format_rate"), True), _fmt(d.get("no_target_rate"), True), _fmt(d.get("exact_ids"), True)]
        table.add_row(*row)
    return table


def _efficiency_table(eff: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    et = Table(title="efficiency", box=box.SIMPLE_HEAD, show_edge=False)
    et.add_column("measure")
    et.add_column("value", justify="right")
    for role, n in (eff.get("parameters") or {}).items():
        et.add_row(f"parameters: {role}", f"{n / 1e6:.1f} M")
    et.add_row("peak RSS", f"{eff.get('peak_rss_mb', 0):.0f} MB")
    if "cuda_max_memory_allocated_mb" in eff:
        et.add_row("CUDA max allocated", f"{eff['cuda_max_memory_allocated_mb']:.0f} MB")
    for k, s in (eff.get("ms_per_query") or {}).items():
        et.add_row(f"ms/query: {k}", f"{s['mean']:.1f} (median {s['median']:.1f})")
    for k, v in (eff.get("perception_ms_per_frame") or {}).items():
        et.add_row(f"perception ms/frame: {k}", f"{v:.1f}")
    for k, v in (eff.get("frames_per_second") or {}).items():
        et.add_row(f"frames/s: {k}", f"{v:.2f}")
    return et


def print_summary(summary: dict[str, Any], console: Any = None) -> None:
    """Rich tables: overall and per split, category, level, targets, media, query length, novelty; then efficiency."""
    from rich.console import Console

    con = console or Console()
    if not con.is_terminal and con.width < 132:  # files and pipes: don't squash the columns
        con = Console(file=con.file, width=132, soft_wrap=True)
    con.print(_scores_table(summary))
    c = summary.get("counts", {})
    con.print(
        f"evaluated {c.get('evaluated', 0)} (now {c.get('evaluated_now', 0)}, resumed {c.get('resumed', 0)}), "
        f"skipped {c.get('skipped', 0)}",
        highlight=False,
    )
    for s in (c.get("skipped_items") or [])[:5]:
        con.print(f"  skipped {s['id']}: {s['reason']}", highlight=False, markup=False)
    con.print(_efficiency_table(summary.get("efficiency", {})))
