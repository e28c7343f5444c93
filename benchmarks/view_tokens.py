"""Benchmark: tokens of the text view the reasoner reads (SmolLM2-135M's tokenizer by default).

Counts, with :func:`fastreasonseg.twin.tokens.view_token_stats`, the header, the mean tokens per instance (image) or
track (video) line, and the total, for the example twin shipped with the package and for every twin of a synthetic
split (mean over its samples, images and videos apart). Token counts are deterministic: unlike timings they can be
compared across runs and machines.

    python benchmarks/view_tokens.py --samples data/synthetic --split test
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastreasonseg.assets import asset_path  # noqa: E402
from fastreasonseg.training.data import load_samples  # noqa: E402
from fastreasonseg.twin import load_twin  # noqa: E402
from fastreasonseg.twin.tokens import view_token_stats  # noqa: E402


def summarise(name: str, twins: list, tokenizer: str | None) -> dict:
    stats = [view_token_stats(t, None, tokenizer) for t in twins]
    listed = [s for s in stats if s.lines]
    return {
        "twins": name,
        "n": len(stats),
        "header": round(statistics.fmean(s.header for s in stats), 1),
        "per_line": round(statistics.fmean(s.per_line for s in listed), 2) if listed else None,
        "lines": round(statistics.fmean(s.lines for s in stats), 1),
        "total": round(statistics.fmean(s.total for s in stats), 1),
        "tokenizer": stats[0].tokenizer if stats else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default=None, help="folder with the synthetic <split>.jsonl files (optional)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--tokenizer", default=None, help="a tokenizer (hub id or dir); default: SmolLM2's GGUF vocabulary")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "view_tokens.json"))
    args = ap.parse_args()

    rows = [summarise("example photo", [load_twin(asset_path("example/coffee.twin.json"))], args.tokenizer)]
    if args.samples:
        twins = [s.load_twin() for s in load_samples(args.samples, args.split)]
        images = [t for t in twins if not t.is_video]
        videos = [t for t in twins if t.is_video]
        rows.append(summarise(f"synthetic {args.split}: images", images, args.tokenizer))
        rows.append(summarise(f"synthetic {args.split}: videos (track lines)", videos, args.tokenizer))
        rows.append(summarise(f"synthetic {args.split}: all", twins, args.tokenizer))
    print("| twins | n | header | tokens per line | lines | total |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['twins']} | {r['n']} | {r['header']} | {r['per_line']} | {r['lines']} | {r['total']} |")
    out = {"benchmark": "view_tokens", "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
