"""Reading and writing twin JSON files."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fastreasonseg.errors import InputError, TwinValidationError

if TYPE_CHECKING:
    from fastreasonseg.twin.schema import DigitalTwin


def load_twin(path: str | os.PathLike) -> DigitalTwin:
    """Read a twin JSON file and validate it.

    Raises :class:`InputError` for a missing, empty or non-JSON file and
    :class:`TwinValidationError` (listing every problem) for a file that breaks the schema.
    """
    from fastreasonseg.twin.schema import DigitalTwin

    p = Path(path)
    if not p.exists():
        raise InputError(f"twin file not found: {p}")
    if p.is_dir():
        raise InputError(f"expected a twin JSON file, got a directory: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read twin file {p}: {exc}") from None
    if not text.strip():
        raise InputError(f"twin file is empty: {p}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TwinValidationError(
            [f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"], str(p)
        ) from None
    return DigitalTwin.from_dict(data, source=str(p))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_twin(twin: DigitalTwin, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write a twin as compact JSON (one line per frame would not help diffs of RLE strings)."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise InputError(f"{p} already exists (pass overwrite=True or --force to replace it)")
    if p.is_dir():
        raise InputError(f"cannot write the twin to {p}: it is a directory")
    write_text_atomic(p, json.dumps(twin.to_dict(), separators=(",", ":")))
