"""Taking an upload in: a place in the build queue is held while the body streams in (:func:`upload_slot`); an
image or video is then checked against the limits and queued as a twin (:func:`store_media`), a twin JSON is
validated and stored ready (:func:`store_twin_json`). Problems are ``HTTPException`` with the status the API
documents."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, Request

from fastreasonseg.errors import FastReasonSegError, TwinValidationError
from fastreasonseg.server.engine import Engine
from fastreasonseg.server.store import new_id
from fastreasonseg.server.uploads import Upload, receive_upload


def probe(engine: Engine, upload: Upload) -> dict[str, Any]:
    """Read the upload's header: kind, size, frames, fps. Raises ``HTTPException`` for the limits."""
    from fastreasonseg.perception.media import open_media

    config = engine.config
    if upload.suffix and upload.path.suffix != upload.suffix:  # the readers pick the decoder by extension
        named = upload.path.with_suffix(upload.suffix)
        os.replace(upload.path, named)
        upload.path = named
    try:
        media = open_media(upload.path)
    except FastReasonSegError as exc:
        msg = str(exc).replace(str(upload.path), upload.filename)
        raise HTTPException(415, f"cannot read {upload.filename!r} as an image or video: {msg}") from None
    pixels = media.width * media.height
    if pixels > config.max_pixels:
        raise HTTPException(
            413,
            f"{upload.filename}: {media.width}x{media.height} is {pixels:,} pixels per frame, above the limit "
            f"of {config.max_pixels:,} (max_pixels)",
        )
    info: dict[str, Any] = {"kind": media.kind, "width": media.width, "height": media.height}
    if media.kind == "video":
        seconds = media.num_frames / media.fps if media.fps > 0 else 0.0
        if media.num_frames > config.max_video_frames:
            raise HTTPException(
                422,
                f"{upload.filename}: the video has {media.num_frames} frames, above the limit of "
                f"{config.max_video_frames} (max_video_frames)",
            )
        if seconds > config.max_video_seconds:
            raise HTTPException(
                422,
                f"{upload.filename}: the video lasts {seconds:.1f} s, above the limit of "
                f"{config.max_video_seconds:g} s (max_video_seconds)",
            )
        info.update(fps=media.fps, num_frames=media.num_frames, seconds=round(seconds, 3))
    return info


def store_media(engine: Engine, upload: Upload) -> dict[str, Any]:
    """Check an uploaded image or video and put it in the store as a queued twin; returns its status."""
    info = probe(engine, upload)
    return engine.store.create(
        new_id(),
        {
            "status": "queued",
            "kind": info["kind"],
            "filename": upload.filename,
            "content_type": upload.media_type,
            "size_bytes": upload.size,
            "media": info,
        },
        source=upload.path,
        source_suffix=upload.suffix,
    )


def store_twin_json(engine: Engine, upload: Upload) -> dict[str, Any]:
    """Validate an uploaded twin JSON (``422`` with every problem) and put it in the store, ready."""
    from fastreasonseg.twin import DigitalTwin

    try:
        data = json.loads(upload.path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(422, f"{upload.filename}: not valid JSON: {exc}") from None
    try:
        twin = DigitalTwin.from_dict(data, source=upload.filename)
    except TwinValidationError as exc:
        raise HTTPException(422, str(exc)) from None
    twin.meta.pop("source_path", None)
    return engine.store.create(
        new_id(),
        {
            "status": "ready",
            "progress": 1.0,
            "kind": "twin",
            "filename": upload.filename,
            "content_type": "application/json",
            "size_bytes": upload.size,
            "source": twin.source.model_dump(),
            "num_instances": twin.num_instances(),
            "num_frames": len(twin.frames),
        },
        twin_json=json.dumps(twin.to_dict(), separators=(",", ":")),
    )


class UploadSlot:
    """A place in the build queue held while an upload streams in; :meth:`submit` hands it to the build."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.upload: Upload | None = None
        self.handed_over = False

    def submit(self, twin_id: str) -> Any:
        """Queue the build of ``twin_id`` on this slot's reservation; returns its future."""
        fut = self.engine.submit_build(twin_id)
        self.handed_over = True
        return fut


@contextlib.asynccontextmanager
async def upload_slot(request: Request, engine: Engine, *, allow_json: bool) -> AsyncIterator[UploadSlot]:
    """Reserve a build (``503`` when the queue is full: before reading the body), then receive the upload.

    On the way out the temporary file is removed unless it was moved into the store, and the reservation is
    released unless a build took it over.
    """
    engine.reserve_build()
    slot = UploadSlot(engine)
    try:
        slot.upload = await receive_upload(
            request, engine.store.temp_path(".upload"), engine.config, allow_json=allow_json
        )
        yield slot
    finally:
        if slot.upload is not None:
            slot.upload.discard()  # no-op once the file was moved into the store
        if not slot.handed_over:
            engine.release_build()
