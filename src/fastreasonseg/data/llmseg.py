"""LLM-Seg40K: one JSON per split, ``{image: {from_dataset, qa_pairs: [{question, answer, rle_seg}]}}``.

Each question/answer pair has its own target, so each is one sample (id ``<image>#<k>``); its mask is the COCO RLE
``rle_seg``. The split file is ``<root>/<split>.json`` (``val`` also finds ``validation.json``), or ``root`` may be the
JSON file itself. Images come from the source datasets (COCO, EgoObjects): ``images`` maps a ``from_dataset`` value to
its image folder (or is one folder for all); by default ``<root>/<from_dataset>/``, ``<root>/images/<from_dataset>/``
and ``<root>/images/`` are searched.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastreasonseg.data.base import CorruptSample, DatasetReader, Sample, load_json
from fastreasonseg.errors import InputError
from fastreasonseg.twin.masks import decode_mask, rle_is_valid

_SPLIT_FILES = {"val": ("val", "validation"), "validation": ("validation", "val")}


class LLMSeg40KReader(DatasetReader):
    name = "llmseg40k"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "validation",
        images: str | os.PathLike | dict[str, str | os.PathLike] | None = None,
    ) -> None:
        super().__init__(root, split)
        if self.root.is_file():
            self.file = self.root
            self.base = self.root.parent
        else:
            names = _SPLIT_FILES.get(split, (split,))
            candidates = [self.root / f"{n}.json" for n in names]
            found = [c for c in candidates if c.is_file()]
            if not found:
                raise InputError(
                    f"LLM-Seg40K split file not found: {' or '.join(str(c) for c in candidates)} "
                    f"(expected one JSON per split: {{image: {{from_dataset, qa_pairs: [...]}}}})"
                )
            self.file = found[0]
            self.base = self.root
        data = load_json(self.file, "LLM-Seg40K split file")
        if not isinstance(data, dict):
            raise InputError(f"{self.file}: expected a JSON object {{image: {{from_dataset, qa_pairs}}}}")
        self._data = data
        self._images = images
        self._index: list[tuple[str, int]] = []
        for image, entry in data.items():
            pairs = entry.get("qa_pairs") if isinstance(entry, dict) else None
            if isinstance(pairs, list) and pairs:
                self._index.extend((image, k) for k in range(len(pairs)))
            else:
                self._index.append((image, -1))  # reported as skipped while iterating

    def _image_dirs(self, source: str) -> list[Path]:
        imgs = self._images
        if isinstance(imgs, dict):
            return [Path(imgs[source])] if source in imgs else []
        if imgs is not None:
            return [Path(imgs)]
        return [self.base / source, self.base / "images" / source, self.base / "images"]

    def _entries(self) -> list[tuple[str, int]]:
        return self._index

    def _entry_id(self, entry: tuple[str, int]) -> str:
        return f"{entry[0]}#{entry[1]}" if entry[1] >= 0 else entry[0]

    def _load(self, entry: tuple[str, int]) -> list[Sample]:
        image, k = entry
        rec = self._data[image]
        if k < 0:
            raise CorruptSample(f"image {image!r} has no 'qa_pairs' list")
        source = rec.get("from_dataset")
        if not isinstance(source, str):
            raise CorruptSample(f"image {image!r} has no 'from_dataset'")
        qa = rec["qa_pairs"][k]
        if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
            raise CorruptSample("qa pair without a 'question' string")
        rle = qa.get("rle_seg")
        if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
            raise CorruptSample("'rle_seg' must be a COCO RLE {size, counts}")
        problem = rle_is_valid(rle)
        if problem:
            raise CorruptSample(f"corrupt 'rle_seg': {problem}")
        dirs = self._image_dirs(source)
        path = next((d / image for d in dirs if (d / image).is_file()), None)
        if path is None:
            looked = ", ".join(str(d) for d in dirs) or f"no folder given for {source!r} in images="
            raise CorruptSample(f"image {image} not found (looked in {looked})")
        return [
            Sample(
                id=self._entry_id(entry),
                dataset=self.name,
                split=self.split,
                queries=[qa["question"]],
                image=path,
                mask=decode_mask(rle),
                category=source,
                extra={"answer": qa.get("answer"), "from_dataset": source},
            )
        ]
