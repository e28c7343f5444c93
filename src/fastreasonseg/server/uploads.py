"""Streaming uploads: the body goes to a temporary file in the store, checked while it arrives.

The size limit is enforced chunk by chunk (``413`` as soon as it is crossed, or at once from
``Content-Length``), the first bytes are sniffed (``415`` for anything that is not a supported image,
video or twin JSON, whatever the declared type says), and a client that goes away mid-upload leaves
nothing behind: the temporary file is removed on every path that does not hand it over.

Two request shapes are accepted: ``multipart/form-data`` with a ``file`` part (and text fields such as
``query``), or the raw file as the body with its own ``Content-Type`` (``?filename=`` names it).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header

from fastreasonseg.server.config import ServerConfig

GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")
JSON_TYPES = ("application/json", "text/json")
MAX_FIELD_BYTES = 64 * 1024

SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "video/mpeg": ".mpg",
    "application/json": ".json",
}


def sniff(head: bytes) -> str | None:
    """The media type the first bytes of a file show (``None`` = not a supported image, video or JSON)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM") and len(head) >= 26:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
            return None  # HEIF/AVIF stills: not readable here
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    if head.lstrip()[:1] == b"{":
        return "application/json"
    return None


def _alias(ctype: str) -> str:
    return {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}.get(ctype, ctype)


@dataclass
class Upload:
    """A finished upload: a temporary file the caller now owns (move it or :meth:`discard` it)."""

    path: Path
    filename: str
    declared_type: str
    media_type: str
    """The sniffed type (``image/...``, ``video/...`` or ``application/json``)."""
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "twin" if self.media_type == "application/json" else self.media_type.split("/")[0]

    @property
    def suffix(self) -> str:
        return SUFFIXES.get(self.media_type, "")

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class _Sink:
    """Writes one file part to disk, enforcing the size limit and sniffing its first bytes."""

    def __init__(self, path: Path, config: ServerConfig, declared: str, allow_json: bool) -> None:
        self.path = path
        self.config = config
        self.declared = _alias(declared.lower())
        self.allow_json = allow_json
        self.fh: IO[bytes] | None = None
        self.size = 0
        self.head = b""
        self.media_type: str | None = None
        self._check_declared()

    def _allowed(self) -> tuple[str, ...]:
        return self.config.allowed_types() + (JSON_TYPES if self.allow_json else ())

    def _accepted_message(self) -> str:
        kinds = "an image (JPEG, PNG, WebP, BMP, GIF, TIFF)"
        if self.config.video_types:
            kinds += ", a video (MP4, MOV, WebM, MKV, AVI, MPEG)"
        if self.allow_json:
            kinds += " or a twin JSON file"
        return f"upload {kinds}"

    def _check_declared(self) -> None:
        d = self.declared
        if d in GENERIC_TYPES or d in self._allowed():
            return
        raise HTTPException(415, f"content type {d!r} is not accepted: {self._accepted_message()}")

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.config.max_upload_bytes:
            raise HTTPException(
                413, f"the upload is larger than the limit of {self.config.max_upload_bytes:,} bytes (max_upload_bytes)"
            )
        if self.media_type is None:
            self.head += data[: 64 - len(self.head)]
            if len(self.head) >= 64:
                self._sniff()
        if self.fh is None:
            self.fh = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self.fh.write(data)

    def _sniff(self) -> None:
        mt = sniff(self.head)
        if mt is None or mt not in self._allowed():
            shown = self.declared or "unknown"
            what = "a twin JSON file" if mt == "application/json" else (mt or "not a supported image or video")
            raise HTTPException(415, f"the file's content is {what} (declared {shown}): {self._accepted_message()}")
        self.media_type = mt

    def finish(self) -> None:
        if self.size == 0:
            raise HTTPException(422, "the uploaded file is empty (0 bytes)")
        if self.media_type is None:
            self._sniff()
        self.close()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _check_length(request: Request, config: ServerConfig) -> None:
    cl = request.headers.get("content-length")
    if cl and cl.isdigit() and int(cl) > config.max_upload_bytes + MAX_FIELD_BYTES:
        raise HTTPException(
            413, f"the upload is larger than the limit of {config.max_upload_bytes:,} bytes (max_upload_bytes)"
        )


async def receive_upload(request: Request, dest: Path, config: ServerConfig, *, allow_json: bool) -> Upload:
    """Stream the request's file to ``dest``; returns the :class:`Upload` or raises ``HTTPException``.

    Whatever happens before the upload is returned (a limit, a bad type, a client that disconnects),
    ``dest`` is removed.
    """
    _check_length(request, config)
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    ctype_s = ctype.decode("latin-1").lower()
    try:
        if ctype_s == "multipart/form-data":
            return await _receive_multipart(request, dest, config, params, allow_json)
        sink = _Sink(dest, config, ctype_s, allow_json)
        try:
            async for chunk in request.stream():
                sink.write(chunk)
            sink.finish()
        finally:
            sink.close()
        name = request.query_params.get("filename") or f"upload{SUFFIXES.get(sink.media_type or '', '')}"
        return Upload(dest, _clean_name(name), ctype_s, sink.media_type or "", sink.size)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise


def _clean_name(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(c for c in name if c.isprintable())[:200] or "upload"


async def _receive_multipart(
    request: Request, dest: Path, config: ServerConfig, params: dict, allow_json: bool
) -> Upload:
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(422, "multipart/form-data without a boundary")
    state: dict = {"headers": {}, "field": b"", "value": b"", "name": None, "filename": None, "sink": None}
    fields: dict[str, bytes] = {}
    result: dict = {}

    def on_part_begin() -> None:
        state["headers"] = {}
        state["name"] = state["filename"] = state["sink"] = None
        state["buf"] = b""

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"] = state["value"] = b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get("content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        fn = disp.get(b"filename")
        if name == "file" or fn is not None:
            if "sink" in result:
                raise HTTPException(422, "send one file per request")
            ctype = state["headers"].get("content-type", b"").decode("latin-1")
            ct, _ = parse_options_header(ctype)
            state["sink"] = _Sink(dest, config, ct.decode("latin-1"), allow_json)
            state["filename"] = fn.decode("utf-8", "replace") if fn else "upload"
            result["sink"] = state["sink"]
            result["filename"] = state["filename"]
            result["declared"] = ct.decode("latin-1")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["sink"] is not None:
            state["sink"].write(data[start:end])
        else:
            state["buf"] += data[start:end]
            if len(state["buf"]) > MAX_FIELD_BYTES:
                raise HTTPException(413, f"form field {state['name']!r} is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end() -> None:
        if state["sink"] is None and state["name"]:
            fields[state["name"]] = state["buf"]

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except HTTPException:
                raise
            except Exception as exc:
                raise HTTPException(422, f"malformed multipart body: {exc}") from None
        parser.finalize()
        sink: _Sink | None = result.get("sink")
        if sink is None:
            raise HTTPException(422, "the form has no 'file' field: send the image or video as the 'file' part")
        sink.finish()
    finally:
        if result.get("sink") is not None:
            result["sink"].close()
    text = {k: v.decode("utf-8", "replace") for k, v in fields.items()}
    return Upload(dest, _clean_name(result["filename"]), result["declared"], sink.media_type or "", sink.size, text)
