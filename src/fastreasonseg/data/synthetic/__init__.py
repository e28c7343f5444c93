"""Synthetic digital twins and implicit queries: the training set and test bed of the reasoner.

* :mod:`.knowledge` - a curated commonsense knowledge base of everyday objects (``knowledge.json``).
* :mod:`.scenes` - seeded image and video twins of coherent settings, with occlusion, depth and detector noise.
* :mod:`.queries` - semantic / spatial / temporal queries at three levels, with reference rationales.
* :mod:`.dataset` - train / val / test splits that test generalisation, JSONL (de)serialisation.
"""

from fastreasonseg.data.synthetic.dataset import (
    SyntheticSample,
    generate_dataset,
    generate_sample,
    load_jsonl,
    save_jsonl,
    write_dataset,
)
from fastreasonseg.data.synthetic.queries import QueryGenerator
from fastreasonseg.data.synthetic.scenes import Scene, SceneGenerator
from fastreasonseg.knowledge import Entry, KnowledgeBase, load_knowledge

__all__ = [
    "Entry",
    "KnowledgeBase",
    "QueryGenerator",
    "Scene",
    "SceneGenerator",
    "SyntheticSample",
    "generate_dataset",
    "generate_sample",
    "load_jsonl",
    "load_knowledge",
    "save_jsonl",
    "write_dataset",
]
