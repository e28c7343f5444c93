"""A devset folder: hand-written queries over schema-v1 twins, for measuring how a reasoner transfers.

Layout (e.g. ``../shared/devset``)::

    ROOT/README.md         what the set is and how it is scored (not read)
    ROOT/queries.json      {"about": "...", "queries": [{qid, twin, query, category, level, gold_ids}, ...]}
    ROOT/twins/*.json      schema-v1 digital twins

``twin`` is the path of the query's twin relative to ROOT; ``gold_ids`` the ids of the instances that answer the
query (``[]`` = nothing in the scene does); ``level`` the number of reasoning steps (1-3). ``queries.json`` may also
be the bare list of queries.

It is a twin dataset (no pixels, :mod:`fastreasonseg.data.base`): one sample per query, id = ``qid``, groups
``category``, ``level`` (``L1``..``L3``) and ``targets`` (none / single / multi). Scoring is the runner's, as the
devset prescribes: per frame of the twin, IoU of the union of the predicted ids' masks with the union of the gold
ids' masks (1.0 when both are empty); a query's IoU is the mean over its frames; gIoU the mean over queries; cIoU
the sum of intersections over the sum of unions over all frames of all queries.

The set has one split, ``test``. A query whose twin is missing or invalid, whose fields are malformed or whose gold
ids are not in its twin is skipped (id = its ``qid``) with the reason. The set is for measuring only: nothing in
the project trains on it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastreasonseg.data.base import CorruptSample, DatasetReader, Sample, load_json
from fastreasonseg.errors import InputError
from fastreasonseg.twin.schema import DigitalTwin

__all__ = ["DEVSET_SPLITS", "DevsetReader"]

DEVSET_SPLITS = ("test",)
QUERIES_FILE = "queries.json"
_FIELDS = ("qid", "twin", "query", "category", "level", "gold_ids")


class DevsetReader(DatasetReader):
    """Queries of a devset folder (see the module docstring); twins are loaded once and shared by their queries."""

    name = "devset"
    has_pixels = False

    def __init__(self, root: str | os.PathLike, split: str = "test") -> None:
        super().__init__(root, split)
        if split not in DEVSET_SPLITS:
            raise InputError(f"the devset has one split, {DEVSET_SPLITS[0]!r}; got {split!r}")
        path = self.root / QUERIES_FILE
        data = load_json(path, "devset queries file")
        queries = data.get("queries") if isinstance(data, dict) else data
        if not isinstance(queries, list):
            raise InputError(f"{path}: expected {{'queries': [{{{', '.join(_FIELDS)}}}, ...]}} or a list of queries")
        self.queries_path = path
        self._queries: list[Any] = queries
        self._twins: dict[str, DigitalTwin | CorruptSample] = {}

    def _entries(self) -> list[tuple[int, Any]]:
        return list(enumerate(self._queries))

    def _entry_id(self, entry: tuple[int, Any]) -> str:
        index, q = entry
        qid = q.get("qid") if isinstance(q, dict) else None
        return str(qid) if qid is not None else f"{QUERIES_FILE}[{index}]"

    def query_count(self) -> int:
        return len(self._queries)

    def twin(self, relative: str) -> DigitalTwin:
        """The twin at ``ROOT/relative`` (loaded and validated once); CorruptSample when it cannot be used."""
        if relative not in self._twins:
            from fastreasonseg.twin.io import load_twin

            try:
                self._twins[relative] = load_twin(self.root / relative)
            except InputError as exc:
                self._twins[relative] = CorruptSample(f"twin {relative}: {exc}")
        got = self._twins[relative]
        if isinstance(got, CorruptSample):
            raise got
        return got

    def _load(self, entry: tuple[int, Any]) -> list[Sample]:
        q = _check_entry(entry[1])
        twin = self.twin(q["twin"])
        missing = sorted(set(q["gold_ids"]) - set(twin.track_ids))
        if missing:
            raise CorruptSample(f"gold id(s) {missing} are not in twin {q['twin']} (its ids: {twin.track_ids})")
        return [
            Sample(
                id=q["qid"],
                dataset=self.name,
                split=self.split,
                queries=[q["query"]],
                category=q["category"],
                level=f"L{q['level']}",
                twin=twin,
                target_ids=q["gold_ids"],
                extra={"twin": q["twin"]},
            )
        ]


def _check_entry(entry: Any) -> dict[str, Any]:
    """The entry's fields, typed; CorruptSample naming the first missing or malformed field."""
    if not isinstance(entry, dict):
        raise CorruptSample(f"a query must be a JSON object, got {type(entry).__name__}")
    absent = [f for f in _FIELDS if f not in entry]
    if absent:
        raise CorruptSample(f"missing field(s) {', '.join(absent)}")
    q = dict(entry)
    q["qid"] = str(q["qid"])
    for f in ("twin", "query", "category"):
        if not isinstance(q[f], str) or not q[f].strip():
            raise CorruptSample(f"field {f!r} must be a non-empty string, got {q[f]!r}")
    if isinstance(q["level"], bool) or not isinstance(q["level"], int):
        raise CorruptSample(f"field 'level' must be an integer, got {q['level']!r}")
    ids = q["gold_ids"]
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise CorruptSample(f"field 'gold_ids' must be a list of integer ids, got {ids!r}")
    q["gold_ids"] = sorted(set(ids))
    if Path(q["twin"]).is_absolute():
        raise CorruptSample(f"field 'twin' must be a path relative to the devset folder, got {q['twin']!r}")
    return q
