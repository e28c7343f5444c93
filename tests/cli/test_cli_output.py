"""What the CLI prints: notes are text (never raw rich markup), progress bars for long commands."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from fastreasonseg.cli.ask import _print_result

from .cli_helpers import run_cli


def _fake_result(notes: list[str]) -> SimpleNamespace:
    rollout = SimpleNamespace(
        notes=notes,
        diagnostic="",
        prompt_tokens=10,
        cached_tokens=0,
        completion_tokens=2,
        prefill_ms=1.0,
        decode_ms=1.0,
        total_ms=2.0,
    )
    return SimpleNamespace(
        reasoning="<answer>{}</answer>", no_target=False, labels={1: "cup [big]"}, ids=[1], rollout=rollout
    )


def test_notes_are_printed_as_text_not_markup(capsys):
    _print_result(_fake_result(["the view was cut to [60] objects", "plain"]), as_json=False, out=None)
    out = capsys.readouterr().out
    assert "note: the view was cut to [60] objects\n" in out and "note: plain\n" in out
    assert "answer: 1 (cup [big])" in out
    assert "[dim]" not in out and "[/]" not in out


def _tty_env() -> dict[str, str]:
    return {**os.environ, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"}


def test_data_synthetic_shows_progress_on_a_terminal(tmp_path):
    args = ("data", "synthetic", "--train", "3", "--val", "1", "--test", "2")
    proc = run_cli(*args, "-o", str(tmp_path / "tty"), env=_tty_env())
    assert proc.returncode == 0, proc.stderr
    assert "synthetic" in proc.stderr and "train" in proc.stderr and "3/3" in proc.stderr and "2/2" in proc.stderr
    piped = run_cli(*args, "-o", str(tmp_path / "pipe"))
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    man = json.loads((tmp_path / "pipe" / "manifest.json").read_text())
    assert man["sizes"] == {"train": 3, "val": 1, "test": 2}
