"""The server's work: bounded pools that build twins and answer questions, shared by every request.

* **Builds** run on ``perception_workers`` threads, each with its own :class:`TwinBuilder` (its own
  vision models: a builder's video tracking state is not shareable). Progress is the fraction of frames
  processed, written to the twin's ``status.json`` as it goes; a deleted twin or a build past
  ``build_timeout_s`` stops at the next frame.
* **Asks** run on ``ask_workers`` threads, each answered by the one :meth:`FastReasonSeg.ask` the Python API
  uses, under one lock (llama.cpp is not thread-safe); loading the twin and writing the result files (mask
  PNGs, overlay) happen outside it. The
  ``detect``/``relabel`` tools borrow an idle builder's perception models when one has been loaded (a
  busy one makes the tool answer "busy" inside ``<results>``, never block the ask).
* Both queues are capped (``max_queued_builds`` / ``max_queued_asks``): past the cap a request is
  refused at once (``QueueFull`` → ``503`` with ``Retry-After``) instead of piling up in memory.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import queue
import shutil
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fastreasonseg.errors import FastReasonSegError, InputError
from fastreasonseg.server.config import ServerConfig
from fastreasonseg.server.store import TwinStore, new_id, now
from fastreasonseg.twin import DigitalTwin

log = logging.getLogger("fastreasonseg.server")


class QueueFull(Exception):
    """Too many requests of one kind are waiting; the client should retry later."""


class TwinNotReady(Exception):
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        state = status.get("status")
        msg = f"twin {status.get('id')} is {state}"
        if state == "failed" and status.get("error"):
            msg += f": {status['error']}"
        elif state in ("queued", "building"):
            msg += f" ({100 * float(status.get('progress') or 0):.0f}%); ask again when its status is ready"
        super().__init__(msg)


class _Stop(Exception):
    """A build was cancelled (twin deleted) or ran past its time limit."""


class _Slot:
    """One builder (its own perception models) and the progress hook of the build it runs."""

    def __init__(self, config: ServerConfig) -> None:
        from fastreasonseg.perception.builder import TwinBuilder

        self.builder = TwinBuilder(config.perception)
        self.loaded = False
        self.on_frame: Any = None
        perc = self.builder.perception
        for name in ("perceive", "track"):
            original = getattr(perc, name)
            setattr(perc, name, self._hooked(original))

    def _hooked(self, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.on_frame is not None:
                self.on_frame(before=True)
            out = fn(*args, **kwargs)
            if self.on_frame is not None:
                self.on_frame(before=False)
            return out

        return call


class _BorrowedPerception:
    """The ``detect``/``classify`` facade of an idle builder's perception (for the ask tools)."""

    def __init__(self, slots: queue.Queue[_Slot]) -> None:
        self.slots = slots

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[Any]:
        from fastreasonseg.reasoning.tools import ToolError

        try:
            slot = self.slots.get(timeout=1.0)
        except queue.Empty:
            raise ToolError("the perception models are busy building a twin; try again later") from None
        try:
            yield slot.builder.perception
        finally:
            self.slots.put(slot)

    def detect(self, image: Any, phrases: Sequence[str], threshold: float) -> list:
        with self._borrow() as p:
            return p.detect(image, phrases, threshold)

    def classify(self, image: Any, boxes: Sequence[Any], candidates: Sequence[str]) -> list:
        with self._borrow() as p:
            return p.classify(image, boxes, candidates)


class Engine:
    """Builds twins and answers questions for the HTTP layer; owns the store, the models and the pools."""

    def __init__(self, config: ServerConfig) -> None:
        from fastreasonseg.api import FastReasonSeg

        self.config = config
        self.store = TwinStore(config.store)
        self.frs = FastReasonSeg(config.reasoner, perception=config.perception, reasoner_config=config.reasoner_config)
        self._build_pool = cf.ThreadPoolExecutor(max(1, config.perception_workers), thread_name_prefix="frs-build")
        self._ask_pool = cf.ThreadPoolExecutor(max(1, config.ask_workers), thread_name_prefix="frs-ask")
        self._slots: queue.Queue[_Slot] = queue.Queue()
        self._slots_made = 0
        self._slots_lock = threading.Lock()
        self._reasoner_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.pending_builds = 0
        self.pending_asks = 0
        self._cache: OrderedDict[str, tuple[DigitalTwin, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._futures: dict[str, cf.Future] = {}
        self.started_at = time.time()

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        if self.config.example:
            self.ensure_example()
        for tid in self.store.recover(self.config.requeue_on_restart):
            log.info("requeueing twin %s (it was being built when the server stopped)", tid)
            self._submit_build(tid, force=True)

    def shutdown(self) -> None:
        for f in list(self._futures.values()):
            f.cancel()
        self._build_pool.shutdown(wait=False, cancel_futures=True)
        self._ask_pool.shutdown(wait=False, cancel_futures=True)

    def ensure_example(self) -> None:
        from fastreasonseg.api import example_twin_path

        if self.store.exists("example"):
            return
        path = example_twin_path()
        twin = DigitalTwin.load(path)
        photo = path.parent / str(twin.meta.get("image") or twin.source.name)
        extra = {f"source{photo.suffix.lower()}": photo} if photo.is_file() else {}
        with contextlib.suppress(FileExistsError):
            self.store.create(
                "example",
                {
                    "status": "ready",
                    "progress": 1.0,
                    "kind": "image",
                    "filename": twin.source.name,
                    "content_type": "application/json",
                    "source": twin.source.model_dump(),
                    "num_instances": twin.num_instances(),
                    "note": "the example twin shipped with the package (hand-annotated photo)",
                },
                twin_json=path.read_text(encoding="utf-8"),
                extra_files=extra,
            )

    def stats(self) -> dict[str, Any]:
        return {
            "pending_builds": self.pending_builds,
            "pending_asks": self.pending_asks,
            "perception_workers": self.config.perception_workers,
            "ask_workers": self.config.ask_workers,
            "max_queued_builds": self.config.max_queued_builds,
            "max_queued_asks": self.config.max_queued_asks,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    # ------------------------------------------------------------------ builds
    def reserve_build(self) -> None:
        """Take a place in the build queue (``QueueFull`` when there is none); call before reading an upload."""
        with self._count_lock:
            if self.pending_builds >= self.config.max_queued_builds:
                raise QueueFull(f"{self.pending_builds} twins are already queued for building; retry later")
            self.pending_builds += 1

    def release_build(self) -> None:
        with self._count_lock:
            self.pending_builds = max(0, self.pending_builds - 1)

    def _submit_build(self, twin_id: str, *, force: bool = False) -> cf.Future:
        """Queue a build; the caller holds a reservation (``force``: take one regardless of the cap)."""
        if force:
            with self._count_lock:
                self.pending_builds += 1
        fut = self._build_pool.submit(self._build, twin_id)
        self._futures[twin_id] = fut
        fut.add_done_callback(lambda _f: (self.release_build(), self._futures.pop(twin_id, None)))
        return fut

    def submit_build(self, twin_id: str) -> cf.Future:
        return self._submit_build(twin_id)

    def _slot(self) -> _Slot:
        with self._slots_lock:
            if self._slots.empty() and self._slots_made < max(1, self.config.perception_workers):
                self._slots_made += 1
                return _Slot(self.config)
        return self._slots.get()

    def _build(self, twin_id: str) -> None:
        st = self.store.read_status(twin_id)
        if st is None or st.get("status") not in ("queued", "building"):
            return
        source = self.store.source_path(twin_id)
        if source is None:
            self.store.update_status(twin_id, status="failed", error="the source file is missing from the store")
            return
        t0 = time.time()
        self.store.update_status(twin_id, status="building", progress=0.0, started_at=now(), stage="loading models")
        slot = self._slot()
        try:
            expected = self._expected_frames(source)
            done = [0]
            last = [0.0]

            def on_frame(before: bool) -> None:
                if time.time() - t0 > self.config.build_timeout_s:
                    raise _Stop(f"the build took longer than {self.config.build_timeout_s:g} s (build_timeout_s)")
                if before:
                    if not self.store.exists(twin_id):
                        raise _Stop("the twin was deleted")
                    return
                done[0] += 1
                if time.time() - last[0] > 0.2 or done[0] >= expected:
                    last[0] = time.time()
                    self.store.update_status(
                        twin_id,
                        progress=round(min(0.99, done[0] / max(1, expected)), 4),
                        stage=f"frame {done[0]}/{expected}",
                    )

            slot.on_frame = on_frame
            twin = slot.builder.build(source, name=st.get("filename") or source.name)
            slot.loaded = True
            twin.meta.pop("source_path", None)
            self.store.write_twin(twin_id, twin)
            self.store.update_status(
                twin_id,
                status="ready",
                progress=1.0,
                stage=None,
                error=None,
                finished_at=now(),
                build_ms=round((time.time() - t0) * 1000, 1),
                source=twin.source.model_dump(),
                num_instances=twin.num_instances(),
                num_frames=len(twin.frames),
            )
        except _Stop as exc:
            self.store.update_status(twin_id, status="failed", error=str(exc), stage=None, finished_at=now())
        except FastReasonSegError as exc:
            msg = str(exc).replace(str(source), st.get("filename") or source.name)
            self.store.update_status(twin_id, status="failed", error=msg, stage=None, finished_at=now())
        except MemoryError:
            self.store.update_status(
                twin_id, status="failed", error="out of memory while building the twin", stage=None, finished_at=now()
            )
        except Exception as exc:  # a bug or a broken model: the status says so, the server keeps serving
            log.error("build of twin %s failed:\n%s", twin_id, traceback.format_exc())
            self.store.update_status(
                twin_id,
                status="failed",
                error=f"unexpected {type(exc).__name__} while building the twin: {exc}",
                stage=None,
                finished_at=now(),
            )
        finally:
            slot.on_frame = None
            self._slots.put(slot)

    def _expected_frames(self, source: Path) -> int:
        from fastreasonseg.perception.media import open_media

        cfg = self.config.perception
        try:
            media = open_media(source, stride=cfg.stride, max_frames=cfg.max_frames)
        except FastReasonSegError:
            return 1
        if media.kind != "video":
            return 1
        n = -(-media.num_frames // max(1, cfg.stride))
        return max(1, min(n, cfg.max_frames) if cfg.max_frames else n)

    # ------------------------------------------------------------------ twins
    def load(self, twin_id: str) -> tuple[DigitalTwin, Any]:
        """The ready twin (cached) and its lazily read source frames (``None`` without a source)."""
        from fastreasonseg.api import SourceFrames
        from fastreasonseg.twin import load_twin

        with self._cache_lock:
            if twin_id in self._cache:
                self._cache.move_to_end(twin_id)
                return self._cache[twin_id]
        st = self.store.read_status(twin_id)
        if st is None:
            raise KeyError(twin_id)
        if st.get("status") != "ready":
            raise TwinNotReady(st)
        twin = load_twin(self.store.twin_path(twin_id))
        src = self.store.source_path(twin_id)
        frames = None
        if src is not None:
            twin.meta["source_path"] = str(src)
            frames = SourceFrames(twin, src)
        else:
            twin.meta.pop("source_path", None)
        with self._cache_lock:
            self._cache[twin_id] = (twin, frames)
            while len(self._cache) > max(1, self.config.twin_cache):
                self._cache.popitem(last=False)
        return twin, frames

    def forget(self, twin_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(twin_id, None)

    def delete(self, twin_id: str) -> bool:
        fut = self._futures.get(twin_id)
        if fut is not None:
            fut.cancel()
        self.forget(twin_id)
        return self.store.delete(twin_id)

    # ------------------------------------------------------------------ asks
    def submit_ask(self, twin_id: str, query: str) -> cf.Future:
        with self._count_lock:
            if self.pending_asks >= self.config.max_queued_asks:
                raise QueueFull(f"{self.pending_asks} questions are already waiting; retry later")
            self.pending_asks += 1
        try:
            fut = self._ask_pool.submit(self._ask, twin_id, query, time.time())
        except BaseException:
            self._release_ask()
            raise
        fut.add_done_callback(lambda _f: self._release_ask())
        return fut

    def _release_ask(self) -> None:
        with self._count_lock:
            self.pending_asks = max(0, self.pending_asks - 1)

    def _ask(self, twin_id: str, query: str, submitted: float) -> dict[str, Any]:
        """Answer with :meth:`FastReasonSeg.ask` under the model lock, then write the result files outside it."""
        t_start = time.time()
        twin, frames = self.load(twin_id)
        perception = _BorrowedPerception(self._slots) if frames is not None and self._any_loaded() else None
        t_lock = time.time()
        with self._reasoner_lock:
            t_model = time.time()
            result = self.frs.ask(twin, query, frames=frames, perception=perception)
        t_done = time.time()
        result.timings_ms.update(
            queue_ms=round((t_start - submitted) * 1000, 1),
            load_ms=round((t_lock - t_start) * 1000, 1),
            lock_wait_ms=round((t_model - t_lock) * 1000, 1),
            reasoner_ms=round((t_done - t_model) * 1000, 1),
        )
        result_id = new_id()
        stage = self.store.temp_path(".result")
        try:
            t_save = time.time()
            result.save(stage)
            result.timings_ms["save_ms"] = round((time.time() - t_save) * 1000, 1)
            info = result.to_dict()
            info.update(twin_id=twin_id, result_id=result_id, created_at=now())
            info["overlay_on_source"] = frames is not None
            (stage / "result.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
            self.store.commit_result(twin_id, result_id, stage)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return info

    def _any_loaded(self) -> bool:
        return any(s.loaded for s in list(self._slots.queue))


def check_query_text(query: Any, max_chars: int) -> str:
    """The query to use, or :class:`InputError` with the reason (empty, not text)."""
    from fastreasonseg.reasoning.prompt import check_query

    if query is None:
        raise InputError('the query is missing: send {"query": "..."}')
    q, _ = check_query(query, max_chars)
    return q
