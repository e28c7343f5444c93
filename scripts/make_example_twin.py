"""Make the example twin shipped with the package (``fastreasonseg/assets/example``).

The photo is scikit-image's ``coffee`` (public domain, courtesy of Pikolo Espresso Bar). No real
perception weights are reachable where this project is built, so the masks are hand-annotated
polygons and ellipses drawn over the photo, the labels and scores are hand-set, and depth comes
from a hand-set plane (the camera looks down at the table: the bottom of the photo is nearest,
the cup rim is nearer than the saucer). The twin's ``meta`` says so. Run::

    python scripts/make_example_twin.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from fastreasonseg.twin import DigitalTwin, Frame, Instance, Models, Source

OUT = Path(__file__).resolve().parents[1] / "src" / "fastreasonseg" / "assets" / "example"
H, W = 400, 600


def polygon(points: list[tuple[int, int]]) -> np.ndarray:
    im = Image.new("1", (W, H), 0)
    ImageDraw.Draw(im).polygon(points, fill=1)
    return np.asarray(im, dtype=bool)


def ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def main() -> None:
    photo = skimage.data.coffee()
    assert photo.shape == (H, W, 3)
    espresso = ellipse(288, 145, 82, 50)
    cup = (
        ellipse(290, 112, 118, 94)
        | polygon([(178, 140), (405, 140), (385, 215), (350, 255), (300, 280), (255, 282), (215, 262), (190, 225)])
        | polygon([(200, 238), (255, 232), (262, 290), (236, 306), (204, 302), (194, 270)])
    )
    spoon = polygon([(400, 68), (423, 72), (396, 238), (381, 234)]) | ellipse(366, 284, 40, 41)
    spoon &= ~cup | polygon([(380, 150), (423, 60), (423, 240), (380, 240)])
    saucer = ellipse(278, 228, 202, 158) & ~cup & ~spoon
    background = polygon([(0, 0), (160, 0), (70, 55), (0, 100)])
    table = ~(saucer | cup | spoon | background)

    rows = np.linspace(0.0, 1.0, H)[:, None]
    depth = np.tile(0.85 - 0.7 * rows, (1, W))  # far at the top, near at the bottom
    depth[cup] -= 0.12  # the cup stands above the saucer, closer to the camera
    depth[spoon] -= 0.04
    depth[background] = 0.98
    depth = np.clip(depth, 0.0, 1.0)

    specs = [
        (1, "cup", cup, 0.92, [("mug", 0.71)]),
        (2, "coffee", espresso, 0.77, [("espresso", 0.70)]),
        (3, "spoon", spoon, 0.88, [("teaspoon", 0.66)]),
        (4, "saucer", saucer, 0.83, [("plate", 0.64)]),
        (5, "table", table, 0.69, [("floor", 0.41)]),
        (6, "wall", background, 0.35, [("shadow", 0.30)]),
    ]
    instances = [
        Instance.from_mask(i, label, m, score=s, alt_labels=alts, depth_map=depth) for i, label, m, s, alts in specs
    ]
    twin = DigitalTwin(
        source=Source(kind="image", name="coffee.jpg", width=W, height=H),
        models=Models(segmenter="hand-annotated", depth="hand-set plane", labeller="hand-annotated"),
        frames=[Frame(index=0, instances=instances)],
        meta={
            "note": (
                "Example twin. Photo: scikit-image 'coffee' (public domain, courtesy of Pikolo Espresso Bar). "
                "Masks are hand-annotated polygons/ellipses and labels/scores are hand-set, because no real "
                "perception weights are reachable where this package is built; depth is a hand-set plane "
                "(bottom of the photo nearest). Made by scripts/make_example_twin.py."
            ),
            "image": "coffee.jpg",
        },
    )
    twin.validate_all()
    OUT.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(OUT / "coffee.jpg", quality=88)
    twin.save(OUT / "coffee.twin.json")
    print(f"wrote {OUT / 'coffee.twin.json'} and coffee.jpg")


if __name__ == "__main__":
    main()
