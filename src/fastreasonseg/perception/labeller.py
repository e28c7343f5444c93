"""OWLv2 open-vocabulary detection and box classification through ``transformers``.

The image encoding (the expensive part) is cached: :meth:`Owlv2Labeller.detect` and
:meth:`Owlv2Labeller.classify` on the same image encode it once, and new label sets are re-scored
with the class head only (text embeddings are cached per phrase too). This is what the reasoner's
``detect(text)`` and ``relabel(id, candidates)`` tools rely on.

OWLv2's image processor pads the image to a square (bottom/right) before resizing, so its boxes
are normalised to the padded square: pixels = normalised * max(H, W); boxes are then clipped to
the frame.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastreasonseg.perception._hf import load_model, torch_device
from fastreasonseg.perception.protocols import Box, Detection
from fastreasonseg.twin.masks import box_iou


def _image_key(image: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def nms_boxes(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy class-agnostic NMS; returns kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for i in order:
        if all(box_iou(tuple(boxes[i]), tuple(boxes[k])) <= iou_threshold for k in kept):
            kept.append(int(i))
    return kept


class Owlv2Labeller:
    """OWLv2 detector/classifier (implements the :class:`Labeller` protocol).

    ``top_k`` alternative labels (runner-ups for the same box) are kept per detection;
    ``template`` turns a name into the text query (``"a photo of a {}"``).
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        *,
        top_k: int = 3,
        template: str = "a photo of a {}",
        nms_iou: float = 0.5,
        cache_size: int = 4,
    ) -> None:
        from transformers import Owlv2ForObjectDetection, Owlv2Processor

        self.name = model
        self.device = torch_device(device)

        def _load(p: str, kw: dict) -> tuple:
            m = Owlv2ForObjectDetection.from_pretrained(p, **kw).to(self.device).eval()
            proc = Owlv2Processor.from_pretrained(p, **kw)
            return m, proc

        self.model, self.processor = load_model("labeller", model, _load)
        self.top_k = top_k
        self.template = template
        self.nms_iou = nms_iou
        self.max_text_len = int(getattr(self.model.config.text_config, "max_position_embeddings", 16))
        self._images: OrderedDict[str, tuple[Any, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._text: dict[str, Any] = {}

    # ---------------------------------------------------------------------------------- encodings
    def encode_image(self, image: np.ndarray) -> tuple[Any, np.ndarray]:
        """(patch features ``(1, N, D)``, predicted boxes ``(N, 4)`` xyxy in image pixels), cached per image."""
        import torch
        from PIL import Image

        key = _image_key(image)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        h, w = image.shape[:2]
        inputs = self.processor.image_processor(images=Image.fromarray(image), return_tensors="pt")
        with torch.inference_mode():
            fmap, _ = self.model.image_embedder(pixel_values=inputs["pixel_values"].to(self.device))
            b, ph, pw, d = fmap.shape
            feats = fmap.reshape(b, ph * pw, d)
            pred = self.model.box_predictor(feats, fmap)[0].float().cpu().numpy()  # cxcywh, padded square
        side = float(max(h, w))
        boxes = np.stack(
            [
                (pred[:, 0] - pred[:, 2] / 2) * side,
                (pred[:, 1] - pred[:, 3] / 2) * side,
                (pred[:, 0] + pred[:, 2] / 2) * side,
                (pred[:, 1] + pred[:, 3] / 2) * side,
            ],
            axis=1,
        )
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        self._images[key] = (feats, boxes)
        while len(self._images) > self._cache_size:
            self._images.popitem(last=False)
        return feats, boxes

    def encode_text(self, phrases: Sequence[str]) -> Any:
        """``(Q, D)`` query embeddings, cached per phrase."""
        import torch

        missing = [p for p in dict.fromkeys(phrases) if p not in self._text]
        if missing:
            queries = [self.template.format(p) if self.template else p for p in missing]
            tok = self.processor.tokenizer(
                queries, padding="max_length", truncation=True, max_length=self.max_text_len, return_tensors="pt"
            )
            with torch.inference_mode():
                out = self.model.owlv2.get_text_features(
                    input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device)
                )
            emb = out.pooler_output if hasattr(out, "pooler_output") else out
            for p, e in zip(missing, emb, strict=True):
                self._text[p] = e
        return torch.stack([self._text[p] for p in phrases])

    def _scores(self, feats: Any, phrases: Sequence[str]) -> np.ndarray:
        """Sigmoid class scores ``(N patches, Q)``."""
        import torch

        q = self.encode_text(phrases)[None]
        mask = torch.ones(q.shape[:2], dtype=torch.bool, device=q.device)
        with torch.inference_mode():
            logits, _ = self.model.class_predictor(feats, q, mask)
        return torch.sigmoid(logits[0].float()).cpu().numpy()

    # ---------------------------------------------------------------------------------- protocol
    def detect(self, image: np.ndarray, vocabulary: Sequence[str], threshold: float) -> list[Detection]:
        """Boxes of the vocabulary entries found in ``image`` (score >= threshold), best first.

        Non-maximum suppression is class-agnostic (IoU > ``nms_iou``): overlapping boxes of
        synonyms ("cup", "mug") become one detection whose runner-up labels are in ``alt_labels``.
        """
        vocab = [v for v in dict.fromkeys(str(v).strip() for v in vocabulary) if v]
        if not vocab:
            return []
        feats, boxes = self.encode_image(image)
        scores = self._scores(feats, vocab)  # (N, Q)
        best = scores.max(axis=1)
        valid = (best >= threshold) & (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        idx = np.flatnonzero(valid)
        if idx.size == 0:
            return []
        kept = [idx[k] for k in nms_boxes(boxes[idx], best[idx], self.nms_iou)]
        out = []
        for i in kept:
            order = np.argsort(-scores[i], kind="stable")[: 1 + self.top_k]
            label = vocab[order[0]]
            alts = [(vocab[j], float(scores[i, j])) for j in order[1:]]
            out.append(
                Detection(box=tuple(float(c) for c in boxes[i]), label=label, score=float(best[i]), alt_labels=alts)
            )
        return out

    def classify(
        self, image: np.ndarray, boxes: Sequence[Box], candidates: Sequence[str]
    ) -> list[list[tuple[str, float]]]:
        """For each box, every candidate with its score, best first (reuses the cached encoding).

        A box is scored by the OWLv2 patches whose own predicted boxes overlap it best (mean of the
        logits-sigmoid of up to 3 patches with IoU >= 0.5, else the single best-overlapping patch).
        """
        cands = [c for c in dict.fromkeys(str(c).strip() for c in candidates) if c]
        if not cands or len(boxes) == 0:
            return [[] for _ in boxes]
        feats, pboxes = self.encode_image(image)
        scores = self._scores(feats, cands)
        res = []
        for b in boxes:
            ious = _ious(np.asarray(b, dtype=np.float32), pboxes)
            order = np.argsort(-ious, kind="stable")
            good = [i for i in order[:3] if ious[i] >= 0.5] or [int(order[0])]
            s = scores[good].mean(axis=0)
            ranking = np.argsort(-s, kind="stable")
            res.append([(cands[j], float(s[j])) for j in ranking])
        return res


def _ious(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
