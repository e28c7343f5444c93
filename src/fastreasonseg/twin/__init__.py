"""The digital twin: schema, JSON (de)serialisation, masks and the compact text view the LLM reads."""

from fastreasonseg.twin.io import load_twin, save_twin
from fastreasonseg.twin.masks import decode_mask, encode_mask, mask_box
from fastreasonseg.twin.schema import (
    RLE,
    DepthStats,
    DigitalTwin,
    Frame,
    Instance,
    Models,
    Source,
    TrackSummary,
)

__all__ = [
    "RLE",
    "DepthStats",
    "DigitalTwin",
    "Frame",
    "Instance",
    "Models",
    "Source",
    "TrackSummary",
    "decode_mask",
    "encode_mask",
    "load_twin",
    "mask_box",
    "save_twin",
]
