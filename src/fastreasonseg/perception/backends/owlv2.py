"""OWLv2 open-vocabulary detection and box classification through ``transformers``.

The image encoding (the expensive part) is cached: :meth:`Owlv2Labeller.detect` and
:meth:`Owlv2Labeller.classify` on the same image encode it once, and new label sets are re-scored
with the class head only. Text embeddings are cached per phrase in memory and, for a model in a
local directory, on disk next to its exports (keyed by the model's fingerprint), so the vocabulary
is encoded once per model, not once per twin. Phrases are padded to the longest phrase of the batch
instead of the tokenizer's maximum (CLIP's text tower is causal and pools the end token, so the
embeddings are the same, for about half the work).

OWLv2's image processor pads the image to a square (bottom/right) before resizing, so its boxes
are normalised to the padded square: pixels = normalised * max(H, W); boxes are then clipped to
the frame.

``input_size`` (default: the model's 960) changes the square the image is resized to, with
interpolated position embeddings: 768 costs about half and loses small objects first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastreasonseg.perception._hf import load_model, torch_device
from fastreasonseg.perception.detections import Detections
from fastreasonseg.perception.protocols import Box
from fastreasonseg.perception.registry import BackendSettings, register

__all__ = ["Owlv2Labeller", "nms_boxes"]


def _image_key(image: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def _iou_rows(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = np.clip(box[2] - box[0], 0, None) * np.clip(box[3] - box[1], 0, None)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms_boxes(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy class-agnostic NMS (vectorised); returns kept indices, best score first.

    A box is dropped when its IoU with an already kept, better box exceeds ``iou_threshold``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    alive = np.ones(len(b), dtype=bool)
    kept: list[int] = []
    for i in order:
        if not alive[i]:
            continue
        kept.append(int(i))
        alive[i] = False
        rest = np.flatnonzero(alive)
        if rest.size:
            alive[rest[_iou_rows(b[i], b[rest]) > iou_threshold]] = False
    return kept


class _ImageTower:
    """``pixel_values -> (patch features (1, N, D), boxes (1, N, 4) cxcywh in [0, 1])`` (the exported part)."""

    def __new__(cls, model: Any, interpolate: bool) -> Any:
        import torch

        class Tower(torch.nn.Module):
            def __init__(self, m: Any) -> None:
                super().__init__()
                self.m = m

            def forward(self, pixel_values: Any) -> tuple[Any, Any]:
                fmap, _ = self.m.image_embedder(pixel_values=pixel_values, interpolate_pos_encoding=interpolate)
                b, ph, pw, d = fmap.shape
                feats = fmap.reshape(b, ph * pw, d)
                return feats, self.m.box_predictor(feats, fmap, interpolate_pos_encoding=interpolate)

        return Tower(model).eval()


@register(
    "labeller",
    "owlv2",
    model_types=("owlv2",),
    name_hints=("owlv2",),
    default=True,
    description="OWLv2 open-vocabulary detector (transformers)",
)
class Owlv2Labeller:
    """OWLv2 detector/classifier (implements the :class:`Labeller` protocol).

    ``top_k`` alternative labels (runner-ups for the same box) are kept per detection;
    ``template`` turns a name into the text query (``"a photo of a {}"``).
    """

    role = "labeller"
    text_cache_name = "owlv2-text"
    image_part = "owlv2-image"

    def __init__(
        self,
        model: str,
        settings: BackendSettings | str | None = None,
        *,
        top_k: int = 3,
        template: str = "a photo of a {}",
        nms_iou: float = 0.5,
        cache_size: int = 4,
    ) -> None:
        if not isinstance(settings, BackendSettings):  # old signature: Owlv2Labeller(model, device)
            settings = BackendSettings(device=settings or "cpu")
        self.name = model
        self.settings = settings
        self.device = torch_device(settings.device)
        self.model, self.processor = load_model("labeller", model, self._load)
        self.top_k = top_k
        self.template = template
        self.nms_iou = nms_iou
        self.max_text_len = int(getattr(self.model.config.text_config, "max_position_embeddings", 16))
        self.native_size = int(getattr(self.model.config.vision_config, "image_size", 960))
        self.input_size = int(settings.input_size or self.native_size)
        self._images: OrderedDict[str, tuple[Any, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._text: dict[str, Any] = {}
        self._tower: Any = None
        self._disk_text_loaded = False

    # ---------------------------------------------------------------------------------- hooks
    def _load(self, path: str, kw: dict) -> tuple[Any, Any]:
        from transformers import Owlv2ForObjectDetection, Owlv2Processor

        m = Owlv2ForObjectDetection.from_pretrained(path, **kw).to(self.device).eval()
        return m, Owlv2Processor.from_pretrained(path, **kw)

    def _pixel_values(self, image: np.ndarray) -> Any:
        from PIL import Image

        side = self.input_size
        kw = {} if side == self.native_size else {"size": {"height": side, "width": side}}
        return self.processor.image_processor(images=Image.fromarray(image), return_tensors="pt", **kw)["pixel_values"]

    def _box_scale(self, h: int, w: int) -> tuple[float, float]:
        """Multipliers (x, y) from the model's normalised boxes to pixels: the padded square's side."""
        side = float(max(h, w))
        return side, side

    def _text_features(self, **tok: Any) -> Any:
        return self.model.owlv2.get_text_features(**tok)

    # ---------------------------------------------------------------------------------- encodings
    def _encoder(self) -> Any:
        if self._tower is None:
            import torch

            from fastreasonseg.perception.runtimes import EncoderSpec, compile_encoder, local_model_dir

            tower = _ImageTower(self.model, self.input_size != self.native_size)
            example = (torch.zeros((1, 3, self.input_size, self.input_size), device=self.device),)
            mdir = local_model_dir(self.name)
            spec = EncoderSpec(self.name, mdir, self.image_part, tower, example, ("pixel_values",), ("feats", "boxes"))
            self._tower = compile_encoder(spec, self.settings)
        return self._tower

    def encode_image(self, image: np.ndarray) -> tuple[Any, np.ndarray]:
        """(patch features ``(1, N, D)``, predicted boxes ``(N, 4)`` xyxy in image pixels), cached per image."""
        key = _image_key(image)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        h, w = image.shape[:2]
        pix = self._pixel_values(image).to(self.device)
        feats, pred = self._encoder()(pix)
        pred = pred[0].float().cpu().numpy()  # cxcywh, normalised
        sx, sy = self._box_scale(h, w)
        boxes = np.stack(
            [
                (pred[:, 0] - pred[:, 2] / 2) * sx,
                (pred[:, 1] - pred[:, 3] / 2) * sy,
                (pred[:, 0] + pred[:, 2] / 2) * sx,
                (pred[:, 1] + pred[:, 3] / 2) * sy,
            ],
            axis=1,
        )
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        feats = feats.to(self.device)
        self._images[key] = (feats, boxes)
        while len(self._images) > self._cache_size:
            self._images.popitem(last=False)
        return feats, boxes

    def encode_text(self, phrases: Sequence[str]) -> Any:
        """``(Q, D)`` query embeddings, cached per phrase (in memory and on disk, see the module doc)."""
        import torch

        self._load_disk_text()
        missing = [p for p in dict.fromkeys(phrases) if p not in self._text]
        if missing:
            queries = [self.template.format(p) if self.template else p for p in missing]
            tok = self.processor.tokenizer(
                queries, padding="longest", truncation=True, max_length=self.max_text_len, return_tensors="pt"
            )
            with torch.inference_mode():
                out = self._text_features(
                    input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device)
                )
            emb = out.pooler_output if hasattr(out, "pooler_output") else out
            for p, e in zip(missing, emb, strict=True):
                self._text[p] = e.detach().clone()
            self._save_disk_text()
        return torch.stack([self._text[p] for p in phrases])

    # ---------------------------------------------------------------------------------- text cache on disk
    def _text_cache_entry(self) -> tuple[Any, Path, Any] | None:
        from fastreasonseg.perception.export_cache import CacheKey, ExportCache
        from fastreasonseg.perception.runtimes import local_model_dir, versions

        mdir = local_model_dir(self.name)
        if mdir is None:
            return None
        tdigest = hashlib.blake2b(self.template.encode(), digest_size=6).hexdigest()
        vers = (*versions(), ("template", tdigest))
        key = CacheKey(self.text_cache_name, "torch", "fp32", (self.max_text_len,), vers)
        return ExportCache(self.settings.export_cache), mdir, key

    def _load_disk_text(self) -> None:
        if self._disk_text_loaded:
            return
        self._disk_text_loaded = True
        entry = self._text_cache_entry()
        if entry is None:
            return
        cache, mdir, key = entry
        try:
            _, reason = cache.check(mdir, key)
            if reason is not None:
                return
            import torch

            path = cache.entry_dir(mdir, key)
            data = np.load(path / "embeddings.npy")
            names = json.loads((path / "phrases.json").read_text())
            if len(names) != len(data):
                return
            for p, e in zip(names, data, strict=True):
                self._text.setdefault(p, torch.from_numpy(np.array(e)).to(self.device))
        except (OSError, ValueError):
            return  # an unreadable cache only costs a re-encoding

    def _save_disk_text(self) -> None:
        entry = self._text_cache_entry()
        if entry is None:
            return
        cache, mdir, key = entry
        names = list(self._text)
        data = np.stack([self._text[p].float().cpu().numpy() for p in names]) if names else np.zeros((0, 1))

        def write(tmp: Path) -> list[str]:
            np.save(tmp / "embeddings.npy", data)
            (tmp / "phrases.json").write_text(json.dumps(names))
            return ["embeddings.npy", "phrases.json"]

        with contextlib.suppress(OSError):  # a read-only cache: keep the embeddings in memory only
            cache.export(mdir, key, write, "new phrases")

    def _scores(self, feats: Any, phrases: Sequence[str]) -> np.ndarray:
        """Sigmoid class scores ``(N patches, Q)``."""
        import torch

        q = self.encode_text(phrases)[None]
        mask = torch.ones(q.shape[:2], dtype=torch.bool, device=q.device)
        with torch.inference_mode():
            logits, _ = self.model.class_predictor(feats, q, mask)
        return torch.sigmoid(logits[0].float()).cpu().numpy()

    # ---------------------------------------------------------------------------------- protocol
    def detect(self, image: np.ndarray, vocabulary: Sequence[str], threshold: float) -> Detections:
        """Boxes of the vocabulary entries found in ``image`` (score >= threshold), best first.

        Non-maximum suppression is class-agnostic (IoU > ``nms_iou``): overlapping boxes of
        synonyms ("cup", "mug") become one detection whose runner-up labels are in ``alt_labels``.
        """
        vocab = [v for v in dict.fromkeys(str(v).strip() for v in vocabulary) if v]
        if not vocab:
            return Detections.empty()
        feats, boxes = self.encode_image(image)
        scores = self._scores(feats, vocab)  # (N, Q)
        best = scores.max(axis=1)
        valid = (best >= threshold) & (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        idx = np.flatnonzero(valid)
        if idx.size == 0:
            return Detections.empty()
        kept = [int(idx[k]) for k in nms_boxes(boxes[idx], best[idx], self.nms_iou)]
        labels, alts = [], []
        for i in kept:
            order = np.argsort(-scores[i], kind="stable")[: 1 + self.top_k]
            labels.append(vocab[order[0]])
            alts.append([(vocab[j], float(scores[i, j])) for j in order[1:]])
        return Detections(boxes[kept], best[kept], labels, alts)

    def classify(
        self, image: np.ndarray, boxes: Sequence[Box], candidates: Sequence[str]
    ) -> list[list[tuple[str, float]]]:
        """For each box, every candidate with its score, best first (reuses the cached encoding).

        A box is scored by the OWL patches whose own predicted boxes overlap it best (mean of the
        logits-sigmoid of up to 3 patches with IoU >= 0.5, else the single best-overlapping patch).
        """
        cands = [c for c in dict.fromkeys(str(c).strip() for c in candidates) if c]
        if not cands or len(boxes) == 0:
            return [[] for _ in boxes]
        feats, pboxes = self.encode_image(image)
        scores = self._scores(feats, cands)
        res = []
        for b in boxes:
            ious = _iou_rows(np.asarray(b, dtype=np.float32), pboxes)
            order = np.argsort(-ious, kind="stable")
            good = [i for i in order[:3] if ious[i] >= 0.5] or [int(order[0])]
            s = scores[good].mean(axis=0)
            ranking = np.argsort(-s, kind="stable")
            res.append([(cands[j], float(s[j])) for j in ranking])
        return res
