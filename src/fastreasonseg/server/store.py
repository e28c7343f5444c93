"""The server's twin store: one directory per twin, written so that a crash never leaves a corrupt twin.

Layout under the store root::

    twins/<twin id>/
        status.json              queued | building | ready | failed, progress, error, source summary
        source.<ext>             the uploaded image or video (absent for an uploaded twin JSON)
        twin.json                the digital twin (once ready)
        results/<result id>/     one directory per answered question
            result.json  masks/<frame>.png  overlay.png | overlay.mp4
    tmp/                         partial uploads and staging directories (emptied at every start)

Every file is written to a temporary name and renamed into place; a new twin directory and a new
result directory are assembled under ``tmp/`` and renamed into ``twins/`` in one step, so a reader
either sees a complete directory or none. An upload that is interrupted (client gone, limit crossed)
only ever touched ``tmp/``, which is cleaned at once and again at the next start.

On start, :meth:`TwinStore.recover` finds twins that were ``queued`` or ``building`` when the server
stopped: with their source file still in the store they go back to ``queued`` (to be built again),
otherwise they are marked ``failed`` with a message that says why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastreasonseg.twin.io import write_text_atomic

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
STATES = ("queued", "building", "ready", "failed")


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def valid_id(value: str) -> bool:
    return bool(ID_RE.match(value))


def now() -> float:
    return round(time.time(), 3)


class TwinStore:
    """Twins, their status and their results on disk. Thread-safe."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        self.twins_dir = self.root / "twins"
        self.tmp_dir = self.root / "tmp"
        self.twins_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ paths
    def twin_dir(self, twin_id: str) -> Path:
        if not valid_id(twin_id):
            raise KeyError(twin_id)
        return self.twins_dir / twin_id

    def exists(self, twin_id: str) -> bool:
        return valid_id(twin_id) and (self.twins_dir / twin_id / "status.json").is_file()

    def twin_path(self, twin_id: str) -> Path:
        return self.twin_dir(twin_id) / "twin.json"

    def source_path(self, twin_id: str) -> Path | None:
        d = self.twin_dir(twin_id)
        for p in sorted(d.glob("source.*")):
            if p.is_file():
                return p
        return None

    def results_dir(self, twin_id: str) -> Path:
        return self.twin_dir(twin_id) / "results"

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path under ``tmp/`` (nothing is created)."""
        return self.tmp_dir / f"{uuid.uuid4().hex}{suffix}"

    # ------------------------------------------------------------------ status
    def read_status(self, twin_id: str) -> dict[str, Any] | None:
        if not self.exists(twin_id):
            return None
        try:
            return json.loads((self.twins_dir / twin_id / "status.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def update_status(self, twin_id: str, **changes: Any) -> dict[str, Any] | None:
        """Merge ``changes`` into the twin's status (atomically); ``None`` if the twin is gone."""
        with self._lock:
            st = self.read_status(twin_id)
            if st is None:
                return None
            st.update(changes)
            st["updated_at"] = now()
            write_text_atomic(self.twins_dir / twin_id / "status.json", json.dumps(st, indent=1))
            return st

    def list(self) -> list[dict[str, Any]]:
        out = []
        for d in self.twins_dir.iterdir():
            if d.is_dir() and valid_id(d.name):
                st = self.read_status(d.name)
                if st is not None:
                    out.append(st)
        out.sort(key=lambda s: s.get("created_at", 0.0), reverse=True)
        return out

    # ------------------------------------------------------------------ create / delete
    def create(
        self,
        twin_id: str,
        status: dict[str, Any],
        *,
        source: Path | None = None,
        source_suffix: str = "",
        twin_json: str | None = None,
        extra_files: dict[str, Path] | None = None,
    ) -> dict[str, Any]:
        """Assemble the twin's directory under ``tmp/`` (moving ``source`` into it) and rename it into place."""
        stage = self.temp_path(".stage")
        stage.mkdir()
        try:
            if source is not None:
                os.replace(source, stage / f"source{source_suffix.lower()}")
            for name, path in (extra_files or {}).items():
                shutil.copyfile(path, stage / name)
            if twin_json is not None:
                write_text_atomic(stage / "twin.json", twin_json)
            t = now()
            st = {"id": twin_id, "created_at": t, "updated_at": t, "progress": 0.0, "error": None, **status}
            write_text_atomic(stage / "status.json", json.dumps(st, indent=1))
            with self._lock:
                target = self.twins_dir / twin_id
                if target.exists():
                    raise FileExistsError(f"twin {twin_id} already exists")
                os.rename(stage, target)
            return st
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    def delete(self, twin_id: str) -> bool:
        with self._lock:
            if not self.exists(twin_id):
                return False
            trash = self.temp_path(".deleted")
            os.rename(self.twins_dir / twin_id, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def write_twin(self, twin_id: str, twin: Any) -> None:
        twin.save(self.twin_path(twin_id))  # DigitalTwin.save is atomic (temp file + rename)

    # ------------------------------------------------------------------ results
    def commit_result(self, twin_id: str, result_id: str, staged: Path) -> Path:
        """Move a result directory assembled under ``tmp/`` into the twin's ``results/``."""
        target = self.results_dir(twin_id) / result_id
        with self._lock:
            if not self.exists(twin_id):
                shutil.rmtree(staged, ignore_errors=True)
                raise KeyError(twin_id)
            target.parent.mkdir(exist_ok=True)
            os.rename(staged, target)
        return target

    def list_results(self, twin_id: str) -> list[dict[str, Any]]:
        d = self.results_dir(twin_id)
        out = []
        if d.is_dir():
            for r in d.iterdir():
                f = r / "result.json"
                if r.is_dir() and f.is_file():
                    try:
                        info = json.loads(f.read_text(encoding="utf-8"))
                    except (OSError, json.JSONDecodeError):
                        continue
                    info["result_id"] = r.name
                    info["_mtime"] = f.stat().st_mtime
                    out.append(info)
        out.sort(key=lambda i: i.pop("_mtime"))
        return out

    # ------------------------------------------------------------------ restart
    def recover(self, requeue: bool) -> list[str]:
        """Handle twins left ``queued``/``building`` by a stopped server; returns the ids to build again."""
        again = []
        for st in self.list():
            if st.get("status") not in ("queued", "building"):
                continue
            tid = st["id"]
            if requeue and self.source_path(tid) is not None:
                self.update_status(tid, status="queued", progress=0.0, note="requeued after a server restart")
                again.append(tid)
            else:
                self.update_status(
                    tid,
                    status="failed",
                    error="the server stopped while this twin was being built; upload the file again",
                )
        again.sort(key=lambda t: (self.read_status(t) or {}).get("created_at", 0.0))
        return again
