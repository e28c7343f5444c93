"""Model backends, one file per model family, each registered by name (see :mod:`..registry`).

* :mod:`.owlv2` — OWLv2 open-vocabulary labeller (the paper's, default);
* :mod:`.owlvit` — OWL-ViT (e.g. B/32: the fast preset's lighter labeller);
* :mod:`.sam2` — SAM-2 image segmenter and SAM-2 video tracker;
* :mod:`.depth_anything` — Depth-Anything(-V2) relative depth.

A backend is constructed as ``Class(model, settings)`` (``settings``:
:class:`~fastreasonseg.perception.registry.BackendSettings`) and implements the matching protocol
of :mod:`fastreasonseg.perception.protocols`.
"""
