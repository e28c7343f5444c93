"""Randomly initialised models of the real classes, saved like downloaded checkpoints.

No machine here reaches a model hub and no package ships SAM-2 / Depth-Anything / OWLv2 weights, so
tests and benchmarks create these and load them back through the public path
(``PerceptionConfig(segmenter=str(dir), ...)``). Two sizes:

* ``tiny`` (default): a few MB each, 64-128 px inputs; for tests (seconds on a CPU);
* ``real``: the real architectures at their true size and input resolution (SAM-2.1 hiera-tiny at
  1024 px, Depth-Anything-V2-Small at 518 px, OWLv2-base-patch16 at 960 px) with random weights,
  for honest CPU cost measurements.

Random weights detect random things: use a very low ``box_threshold`` and check structure, not
content. ``make_tiny_models`` biases SAM-2's object-score head so tracked objects are "present".
"""

from __future__ import annotations

import json
from pathlib import Path

_WORDS = [
    "a",
    "photo",
    "of",
    "an",
    "the",
    "object",
    "person",
    "cat",
    "dog",
    "mug",
    "cup",
    "car",
    "chair",
    "table",
    "bottle",
    "plant",
    "tree",
    "bird",
    "horse",
    "bicycle",
    "motorcycle",
    "bus",
    "truck",
    "boat",
    "book",
    "laptop",
    "phone",
    "bowl",
    "banana",
    "apple",
    "orange",
    "pizza",
    "cake",
    "couch",
    "bed",
    "tv",
    "clock",
    "vase",
    "swan",
    "bear",
    "cow",
    "sheep",
    "man",
    "woman",
    "child",
    "ball",
    "kite",
    "umbrella",
    "bag",
]


def _write_clip_tokenizer(path: Path) -> None:
    """A small CLIP BPE vocabulary: every letter, plus whole words; bos/eos ids > 0."""
    vocab: dict[str, int] = {"!": 0}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789-'.,":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    for w in _WORDS:
        vocab.setdefault(w + "</w>", len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")


def make_sam2(path: str | Path, *, size: str = "tiny") -> Path:
    """A ``Sam2VideoModel`` checkpoint (``Sam2Model`` loads the same directory)."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    path = Path(path)
    if size == "real":
        cfg = Sam2VideoConfig()  # defaults = sam2.1 hiera-tiny geometry at 1024 px
        bb = cfg.vision_config.backbone_config
        bb.blocks_per_stage, bb.embed_dim_per_stage = [1, 2, 7, 2], [96, 192, 384, 768]
        bb.num_attention_heads_per_stage = [1, 2, 4, 8]
        bb.global_attention_blocks = [5, 7, 9]
        bb.window_positional_embedding_background_size = [7, 7]
        cfg.vision_config.backbone_channel_list = [768, 384, 192, 96]
    else:
        s = 128
        hiera = {
            "model_type": "sam2_hiera_det_model",
            "hidden_size": 32,
            "num_attention_heads": 1,
            "image_size": [s, s],
            "blocks_per_stage": [1, 1, 2, 1],
            "embed_dim_per_stage": [32, 64, 128, 256],
            "num_attention_heads_per_stage": [1, 1, 1, 1],
            "window_size_per_stage": [4, 4, 4, 4],
            "global_attention_blocks": [3],
            "window_positional_embedding_background_size": [4, 4],
        }
        vision = {
            "model_type": "sam2_vision_model",
            "backbone_config": hiera,
            "backbone_channel_list": [256, 128, 64, 32],
            "backbone_feature_sizes": [[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
            "fpn_hidden_size": 128,
        }
        cfg = Sam2VideoConfig(
            vision_config=vision,
            prompt_encoder_config={"hidden_size": 128, "image_size": s, "patch_size": 16},
            mask_decoder_config={
                "hidden_size": 128,
                "mlp_dim": 256,
                "num_attention_heads": 4,
                "iou_head_hidden_dim": 128,
            },
            image_size=s,
            memory_attention_hidden_size=128,
            memory_attention_num_layers=1,
            memory_attention_feed_forward_hidden_size=256,
            memory_attention_rope_feat_sizes=[s // 16, s // 16],
            memory_encoder_hidden_size=128,
            memory_encoder_output_channels=64,
            mask_downsampler_embed_dim=128,
            memory_fuser_embed_dim=128,
            memory_fuser_intermediate_dim=256,
            memory_fuser_num_layers=1,
            num_maskmem=3,
            max_object_pointers_in_encoder=4,
        )
    torch.manual_seed(0)
    model = Sam2VideoModel(cfg).eval()
    if size != "real":
        # random weights score every object as absent; make objects present, and masks non-trivial
        head = model.mask_decoder.pred_obj_score_head
        with torch.no_grad():
            head.proj_out.bias.fill_(4.0)
    model.save_pretrained(path)
    return path


def make_depth(path: str | Path, *, size: str = "tiny") -> Path:
    """A Depth-Anything(-V2) relative-depth checkpoint with its image processor."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    path = Path(path)
    if size == "real":
        bb = Dinov2Config(
            hidden_size=384,
            num_hidden_layers=12,
            num_attention_heads=6,
            image_size=518,
            patch_size=14,
            out_indices=[3, 6, 9, 12],
            reshape_hidden_states=False,
            apply_layernorm=True,
        )
        cfg = DepthAnythingConfig(
            backbone_config=bb,
            fusion_hidden_size=64,
            head_hidden_size=32,
            neck_hidden_sizes=[48, 96, 192, 384],
            reassemble_hidden_size=384,
            patch_size=14,
            depth_estimation_type="relative",
        )
        img = 518
    else:
        bb = Dinov2Config(
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=56,
            patch_size=14,
            out_indices=[1, 2, 3, 4],
            reshape_hidden_states=False,
            apply_layernorm=True,
        )
        cfg = DepthAnythingConfig(
            backbone_config=bb,
            fusion_hidden_size=16,
            head_hidden_size=8,
            neck_hidden_sizes=[8, 16, 32, 32],
            reassemble_hidden_size=32,
            patch_size=14,
            depth_estimation_type="relative",
        )
        img = 56
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(cfg).eval().save_pretrained(path)
    DPTImageProcessor(
        size={"height": img, "width": img},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        do_pad=False,
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(path)
    return path


def make_owlv2(path: str | Path, *, size: str = "tiny") -> Path:
    """An OWLv2 detector checkpoint with processor and a small CLIP tokenizer (bos id > 0)."""
    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _write_clip_tokenizer(path)
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), pad_token="!", model_max_length=16)
    text = {
        "vocab_size": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "max_position_embeddings": 16,
    }
    if size == "real":
        cfg = Owlv2Config(text_config=text, vision_config={"image_size": 960, "patch_size": 16})
        img = 960
    else:
        text.update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
        vision = {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 16,
        }
        cfg = Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
        img = 64
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(cfg).eval()
    # random box heads saturate the sigmoid (degenerate boxes, filtered out): keep boxes near the per-patch
    # prior at every size, so real-size benchmarks prompt SAM-2 with boxes as a trained detector would
    with torch.no_grad():
        model.box_head.dense2.weight.mul_(0.002)
        model.box_head.dense2.bias.zero_()
    model.save_pretrained(path)
    Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": img, "width": img}), tokenizer=tok
    ).save_pretrained(path)
    return path


def make_owlvit(path: str | Path, *, size: str = "tiny") -> Path:
    """An OWL-ViT (v1) detector checkpoint with processor and the small CLIP tokenizer.

    ``real``: OWL-ViT B/32 (ViT-B/32 at 768 px, 576 patch tokens), the fast preset's labeller.
    """
    import torch
    from transformers import (
        CLIPTokenizer,
        OwlViTConfig,
        OwlViTForObjectDetection,
        OwlViTImageProcessor,
        OwlViTProcessor,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _write_clip_tokenizer(path)
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), pad_token="!", model_max_length=16)
    text = {
        "vocab_size": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "max_position_embeddings": 16,
    }
    if size == "real":
        cfg = OwlViTConfig(text_config=text, vision_config={"image_size": 768, "patch_size": 32})
        img = 768
    else:
        text.update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
        vision = {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 16,
        }
        cfg = OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32)
        img = 64
    torch.manual_seed(0)
    model = OwlViTForObjectDetection(cfg).eval()
    with torch.no_grad():  # as make_owlv2, stronger (its random box head is larger): the per-patch prior boxes
        model.box_head.dense2.weight.zero_()
        model.box_head.dense2.bias.zero_()
    model.save_pretrained(path)
    OwlViTProcessor(
        image_processor=OwlViTImageProcessor(
            size={"height": img, "width": img}, crop_size={"height": img, "width": img}
        ),
        tokenizer=tok,
    ).save_pretrained(path)
    return path


def make_tiny_models(root: str | Path, *, size: str = "tiny") -> dict[str, str]:
    """Create the three checkpoints under ``root``; returns ``{"segmenter": dir, "depth": dir, "labeller": dir}``."""
    from fastreasonseg.perception._hf import _quiet_transformers

    root = Path(root)
    with _quiet_transformers():
        return {
            "segmenter": str(make_sam2(root / "sam2", size=size)),
            "depth": str(make_depth(root / "depth", size=size)),
            "labeller": str(make_owlv2(root / "owlv2", size=size)),
        }
