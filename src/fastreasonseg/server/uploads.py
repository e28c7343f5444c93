"""Streaming uploads: the body goes to a temporary file in the store, checked while it arrives.

The size limit is enforced chunk by chunk (``413`` as soon as it is crossed, or at once from
``Content-Length``), the first bytes are sniffed (``415`` for anything that is not a supported image,
video or twin JSON, whatever the declared type says; a file declared as JSON, by its type or a ``.json`` name,
goes to the twin JSON check, which says what is wrong with it: ``422``), and a client that goes away mid-upload leaves
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

    def __init__(self, path: Path, config: ServerConfig, declared: str, allow_json: bool, filename: str = "") -> None:
        self.path = path
        self.config = config
        self.declared = _alias(declared.lower())
        self.allow_json = allow_json
        self.filename = filename
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

    def _declares_json(self) -> bool:
        return self.declared in JSON_TYPES or self.filename.lower().endswith(".json")

    def _sniff(self) -> None:
        mt = sniff(self.head)
        if mt is None and self.allow_json and self._declares_json():
            mt = "application/json"  # a twin JSON that does not parse: reading it says why (422)
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
        given = request.query_params.get("filename") or ""
        sink = _Sink(dest, config, ctype_s, allow_json, given)
        try:
            async for chunk in request.stream():
                sink.write(chunk)
            sink.finish()
        finally:
            sink.close()
        name = given or f"upload{SUFFIXES.get(sink.media_type or '', '')}"
        return Upload(dest, _clean_name(name), ctype_s, sink.media_type or "", sink.size)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise


def _clean_name(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(c for c in name if c.isprintable())[:200] or "upload"


class _MultipartForm:
    """The callbacks of python-multipart's streaming parser: the ``file`` part goes to a :class:`_Sink`, other parts
    are kept as text fields (each at most ``MAX_FIELD_BYTES``)."""

    def __init__(self, dest: Path, config: ServerConfig, allow_json: bool) -> None:
        self.dest, self.config, self.allow_json = dest, config, allow_json
        self.fields: dict[str, bytes] = {}
        self.sink: _Sink | None = None
        self.filename = "upload"
        self.declared = ""
        self._headers: dict[str, bytes] = {}
        self._field = self._value = self._buf = b""
        self._name = ""
        self._in_file = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers, self._name, self._in_file, self._buf = {}, "", False, b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, disp = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = disp.get(b"name", b"").decode("utf-8", "replace")
        fn = disp.get(b"filename")
        if self._name != "file" and fn is None:
            return
        if self.sink is not None:
            raise HTTPException(422, "send one file per request")
        ct, _ = parse_options_header(self._headers.get("content-type", b"").decode("latin-1"))
        self.declared = ct.decode("latin-1")
        self.filename = fn.decode("utf-8", "replace") if fn else "upload"
        self.sink = _Sink(self.dest, self.config, self.declared, self.allow_json, self.filename)
        self._in_file = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self.sink is not None:
            self.sink.write(data[start:end])
            return
        self._buf += data[start:end]
        if len(self._buf) > MAX_FIELD_BYTES:
            raise HTTPException(413, f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if not self._in_file and self._name:
            self.fields[self._name] = self._buf


async def _receive_multipart(
    request: Request, dest: Path, config: ServerConfig, params: dict, allow_json: bool
) -> Upload:
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(422, "multipart/form-data without a boundary")
    form = _MultipartForm(dest, config, allow_json)
    parser = MultipartParser(boundary, form.callbacks())
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except HTTPException:
                raise
            except Exception as exc:
                raise HTTPException(422, f"malformed multipart body: {exc}") from None
        parser.finalize()
        if form.sink is None:
            raise HTTPException(422, "the form has no 'file' field: send the image or video as the 'file' part")
        form.sink.finish()
    finally:
        if form.sink is not None:
            form.sink.close()
    text = {k: v.decode("utf-8", "replace") for k, v in form.fields.items()}
    sink = form.sink
    return Upload(dest, _clean_name(form.filename), form.declared, sink.media_type or "", sink.size, text)
