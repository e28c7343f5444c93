"""Every operator of the plan language on hand-built twins, against the definition in its file's docstring.

The scenes are 100 x 100 frames (one pixel = 0.01 of the frame, see ``scenes.py``); each case puts objects just
inside and just outside the operator's thresholds, so the expected ids are computed by hand from the definition.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from fastreasonseg.perception.protocols import Detection
from fastreasonseg.reasoning.grounding import NameMatcher
from fastreasonseg.reasoning.program import evaluate, parse_program
from fastreasonseg.reasoning.tools import Param, Selection, Tool, ToolContext, ToolError, default_registry
from fastreasonseg.reasoning.tools.registry import ToolRegistry, discover
from fastreasonseg.twin.schema import DepthStats

from .scenes import Thing, Track, box_mask, centred, context, ids, image, run, video, why

REG = default_registry()


# ---------------------------------------------------------------------------------------------- registry
def test_registry_holds_one_operator_per_file():
    import fastreasonseg.reasoning.tools as pkg

    names = REG.names
    assert len(names) == len(set(names)) == len(discover())
    assert names[:2] == ["union", "exclude"] and names[2:] == sorted(names[2:])
    for n in names:  # each operator is the TOOL of the file named after it
        assert (Path(pkg.__path__[0]) / f"{n}.py").is_file()
        assert importlib.import_module(f"fastreasonseg.reasoning.tools.{n}").TOOL is REG[n]
    expected = {
        *("left", "right", "above", "below", "front", "behind", "near", "on", "inside", "between", "closest_to"),
        *("nearest", "farthest", "largest", "smallest", "leftmost", "rightmost", "highest", "lowest", "at"),
        *("enters", "leaves", "appears_first", "appears_last", "approaches", "recedes", "moves_left"),
        *("moves_right", "moves_up", "moves_down", "still", "stops", "keeps_moving", "fastest", "slowest"),
        *("union", "exclude", "detect", "relabel"),
    }
    assert expected <= set(names)  # the operators issue 14 asks for (a new one is just a new file)


def test_registry_media_split_and_subset():
    image_ops = default_registry(video=False).names
    video_ops = default_registry(video=True).names
    track_ops = {t.name for t in REG if t.video_only}
    assert track_ops >= {
        *("enters", "leaves", "appears_first", "appears_last", "approaches", "recedes", "moves_left"),
        *("moves_right", "moves_up", "moves_down", "still", "stops", "keeps_moving", "fastest", "slowest"),
    }
    assert track_ops.isdisjoint({"left", "nearest", "at", "union", "exclude", "detect", "relabel", "between"})
    assert set(image_ops) == set(REG.names) - track_ops and set(video_ops) == set(REG.names)
    assert REG.subset(["left", "nearest"]).names == ["left", "nearest"]
    with pytest.raises(ValueError, match="unknown operators"):
        REG.subset(["left", "fly"])


def test_registry_rejects_bad_tools():
    t = REG["left"]
    reg = ToolRegistry([t])
    with pytest.raises(ValueError, match="already registered"):
        reg.register(t)
    with pytest.raises(ValueError, match="bad operator name"):
        reg.register(Tool("all", (), lambda ctx: Selection(()), "x"))
    with pytest.raises(ValueError, match="bad operator name"):
        reg.register(Tool("two words", (), lambda ctx: Selection(()), "x"))
    with pytest.raises(TypeError):
        reg.register("left")  # type: ignore[arg-type]


def test_signatures_and_description():
    assert REG["left"].signature() == "left(A, B)"
    assert REG["between"].signature() == "between(A, B, C)"
    assert REG["union"].signature() == "union(A, B, ...)"
    assert REG["detect"].signature() == "detect(name)"
    assert REG["relabel"].signature() == "relabel(A, name|name)"
    assert REG["at"].signature().startswith("at(A, ")
    lines = REG.describe().splitlines()
    assert len(lines) == len(REG)
    assert [ln.split("(")[0] for ln in lines] == REG.names
    assert Param("k", "ordinal", optional=True).signature() == "[k]"


def test_signature_of_an_optional_argument_as_documented():
    assert REG["nearest"].signature() == "nearest(A, [k])"
    assert REG["closest_to"].signature() == "closest_to(A, B, [k])"


# ---------------------------------------------------------------------------------------------- left / right
# anchor 5 "box" centred at x = 0.50: left needs cx < 0.47, right cx > 0.53
LR = image(
    Thing(5, "box", (45, 40, 55, 60)),
    Thing(1, "ball", (42, 10, 46, 14)),  # cx 0.44: left
    Thing(2, "ball", (46, 70, 50, 74)),  # cx 0.48: neither (within 0.03)
    Thing(3, "ball", (50, 10, 54, 14)),  # cx 0.52: neither
    Thing(4, "ball", (54, 70, 58, 74)),  # cx 0.56: right
    Thing(0, "cat", (0, 0, 10, 10)),  # cx 0.05: left
)


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("left(ball, box)", [1]),
        ("right(ball, box)", [4]),
        ("left(all, box)", [0, 1]),  # the anchor itself is never in the answer
        ("right(all, box)", [4]),
        ("left(box, ball)", "ambiguous"),
        ("left(all, #4)", [0, 1, 2, 3, 5]),
        ("right(#4, #0)", [4]),
    ],
)
def test_left_right(plan, expected):
    if isinstance(expected, str):
        assert expected in why(plan, LR)
    else:
        assert ids(plan, LR) == expected


def test_relation_says_why():
    assert why("left(ball, box)", LR) == "left of 5 box"
    assert why("left(cat, #1)", LR) == "left of 1 ball"
    assert why("right(cat, box)", LR) == "nothing right of 5 box"
    assert why("left(ball, piano)", LR) == "no anchor: no object called 'piano'"
    assert why("left(piano, box)", LR) == "no object called 'piano'"


# ---------------------------------------------------------------------------------------------- above / below
# anchor 0 "shelf" (30..70 x 40..60): above needs cy < 0.40 + 0.05 - 0.02 = 0.43, below cy > 0.60 - 0.05 + 0.02 = 0.57,
# both with a horizontal overlap of at least 0.2 of the narrower box
AB = image(
    Thing(0, "shelf", (30, 40, 70, 60)),
    Thing(1, "vase", (40, 20, 50, 30)),  # cy 0.25, over it: above
    Thing(2, "clock", (80, 20, 90, 30)),  # up and to the side: not above
    Thing(3, "bird", (40, 36, 50, 48)),  # cy 0.42: above
    Thing(4, "cat", (40, 40, 50, 48)),  # cy 0.44: neither
    Thing(5, "picture", (66, 10, 76, 20)),  # overlap 0.04 / 0.10 = 0.4: above
    Thing(6, "sign", (69, 10, 79, 20)),  # overlap 0.01 / 0.10 = 0.1: not above
    Thing(7, "box", (40, 70, 50, 80)),  # cy 0.75: below
    Thing(8, "shoe", (40, 54, 50, 62)),  # cy 0.58: below
    Thing(9, "sock", (40, 52, 50, 60)),  # cy 0.56: neither
    Thing(10, "bin", (80, 70, 90, 80)),  # low but to the side: not below
)


def test_above_below():
    assert ids("above(all, shelf)", AB) == [1, 3, 5]
    assert ids("below(all, shelf)", AB) == [7, 8]
    assert ids("above(shelf, box)", AB) == [0]
    assert ids("below(vase|bird, box)", AB) == []
    assert why("below(vase|bird, box)", AB) == "nothing below 7 box"


# ---------------------------------------------------------------------------------------------- front / behind
# anchor 0 "chair" at depth 0.50: front needs depth < 0.45, behind > 0.55
FB = image(
    Thing(0, "chair", (40, 40, 60, 60), depth=0.5),
    Thing(1, "dog", (0, 0, 10, 10), depth=0.40),  # front
    Thing(2, "cat", (10, 0, 20, 10), depth=0.46),  # neither
    Thing(3, "cup", (20, 0, 30, 10), depth=0.54),  # neither
    Thing(4, "lamp", (30, 0, 40, 10), depth=0.60),  # behind
    Thing(5, "toy", (50, 0, 60, 10)),  # no depth: neither
    Thing(6, "book", (60, 0, 70, 10)),  # no depth (anchor without depth)
)


def test_front_behind():
    assert ids("front(all, chair)", FB) == [1]
    assert ids("behind(all, chair)", FB) == [4]
    assert ids("front(all, book)", FB) == [] and ids("behind(all, book)", FB) == []
    assert ids("behind(chair, dog)", FB) == [0] and ids("front(dog, lamp)", FB) == [1]


# ---------------------------------------------------------------------------------------------- near
# anchor 0 "sofa" (40..60 x 40..60, side 0.2): near needs a gap <= 0.25 * 0.2 = 0.05 and depths within 0.2
NEAR = image(
    Thing(0, "sofa", (40, 40, 60, 60), depth=0.5),
    Thing(1, "lamp", (64, 40, 70, 60), depth=0.5),  # gap 0.04: near
    Thing(2, "plant", (66, 40, 70, 60), depth=0.5),  # gap 0.06: not near
    Thing(3, "dog", (34, 64, 38, 68)),  # diagonal gap hypot(0.02, 0.04) = 0.045, no depth: near
    Thing(4, "cat", (45, 45, 50, 50), depth=0.8),  # overlapping but 0.3 deeper: not near
    Thing(5, "toy", (45, 30, 50, 41), depth=0.62),  # touching, 0.12 deeper: near
    Thing(6, "rug", (0, 90, 10, 100), depth=0.5),  # far away
)


def test_near():
    assert ids("near(all, sofa)", NEAR) == [1, 3, 5]
    assert ids("near(rug, sofa)", NEAR) == []
    assert ids("near(sofa, lamp)", NEAR) == [0]


# ---------------------------------------------------------------------------------------------- on / inside
# anchor 0 "table" (20..80 x 50..90, area 2400): on needs a smaller box with its centre x in 0.22..0.78 and either its
# bottom edge in 0.476..0.70 with the centre above 0.70, or at least 80% of its box inside the table's
ON = image(
    Thing(0, "table", (20, 50, 80, 90)),
    Thing(1, "cup", (30, 40, 40, 52)),  # bottom 0.52: on
    Thing(2, "vase", (50, 30, 56, 48)),  # bottom 0.48 (just above the top edge): on
    Thing(3, "bird", (50, 30, 56, 46)),  # bottom 0.46: above it, not on
    Thing(4, "lamp", (81, 40, 90, 55)),  # centre 0.855 beside the table: not on
    Thing(5, "book", (40, 70, 50, 80)),  # inside the table's box (a shelf seen from the front): on
    Thing(6, "tent", (10, 20, 90, 60)),  # rests on the top edge but is larger: not on
    Thing(7, "ball", (60, 84, 66, 96)),  # bottom 0.96, half inside: not on
)


def test_on():
    assert ids("on(all, table)", ON) == [1, 2, 5]
    assert why("on(all, table)", ON) == "on 0 table"
    assert ids("on(table, cup)", ON) == []  # the larger one is never on the smaller


# anchor 0 "box" (20..80 x 20..80, area 3600): inside needs a smaller box at least 80% inside it
INSIDE = image(
    Thing(0, "box", (20, 20, 80, 80)),
    Thing(1, "toy", (30, 30, 40, 40)),  # all inside
    Thing(2, "ball", (15, 30, 25, 40)),  # half inside
    Thing(3, "pen", (17, 30, 27, 40)),  # 70% inside
    Thing(4, "cube", (19, 30, 29, 40)),  # 90% inside
    Thing(5, "crate", (10, 10, 90, 90)),  # contains the box: not inside it
)


def test_inside():
    assert ids("inside(all, box)", INSIDE) == [1, 4]
    assert ids("inside(box, crate)", INSIDE) == [0]
    assert ids("inside(crate, box)", INSIDE) == []


# ---------------------------------------------------------------------------------------------- between
# lamp (cx 0.15) and plant (cx 0.85) side by side: between needs cx in (0.22, 0.78) (a 10% margin) and cy in the
# band 0.40..0.60 their boxes span
BETWEEN = image(
    Thing(1, "lamp", (10, 40, 20, 60)),
    Thing(2, "plant", (80, 40, 90, 60)),
    Thing(0, "chair", (45, 45, 55, 55)),  # in the middle: between
    Thing(3, "cat", (45, 70, 55, 80)),  # below the band: not between
    Thing(4, "dog", (18, 45, 24, 55)),  # cx 0.21 within the margin: not between
    Thing(5, "cup", (22, 45, 26, 55)),  # cx 0.24: between
    Thing(6, "sink", (40, 0, 60, 10)),
    Thing(7, "bin", (40, 90, 60, 100)),
)


def test_between():
    assert ids("between(all, lamp, plant)", BETWEEN) == [0, 5]
    assert ids("between(all, plant, lamp)", BETWEEN) == [0, 5]
    # sink above, bin below: one over the other, so the test is top to bottom: cy in (0.14, 0.86), cx in 0.40..0.60
    assert ids("between(all, sink, bin)", BETWEEN) == [0, 3]
    assert why("between(all, lamp, plant)", BETWEEN) == "between 1 lamp and 2 plant"
    assert why("between(all, lamp, lamp)", BETWEEN) == "both anchors are 1 lamp"
    assert why("between(all, lamp, piano)", BETWEEN) == "no anchor: no object called 'piano'"
    assert why("between(all, piano, lamp)", BETWEEN) == "no anchor: no object called 'piano'"
    assert why("between(cat, lamp, plant)", BETWEEN) == "nothing between 1 lamp and 2 plant"
    assert "ambiguous second anchor: 2 objects" in why("between(all, lamp, plant|cat)", BETWEEN)
    assert "ambiguous first anchor" in why("between(all, lamp|cat, plant)", BETWEEN)


# ---------------------------------------------------------------------------------------------- closest_to
CLOSE = image(
    Thing(0, "dog", centred(0.5, 0.5)),
    Thing(1, "ball", centred(0.5, 0.8)),  # 0.30 away
    Thing(2, "ball", centred(0.6, 0.5)),  # 0.10 away
    Thing(3, "ball", centred(0.5, 0.3)),  # 0.20 away
    Thing(4, "cat", centred(0.9, 0.9)),
)


def test_closest_to():
    assert ids("closest_to(ball, dog)", CLOSE) == [2]
    assert ids("closest_to(ball, dog, 2)", CLOSE) == [3]
    assert ids("closest_to(ball, dog, 3)", CLOSE) == [1]
    assert why("closest_to(ball, dog, 4)", CLOSE) == "only 3 to rank"
    assert ids("closest_to(all, dog)", CLOSE) == [2]  # never the anchor itself
    assert why("closest_to(ball, dog, 2)", CLOSE) == "2nd closest to 0 dog"
    assert ids("closest_to(dog|cat, #1)", CLOSE) == [0]
    assert why("closest_to(ball, piano)", CLOSE) == "no anchor: no object called 'piano'"
    assert why("closest_to(piano, dog)", CLOSE) == "no object called 'piano'"
    assert "ambiguous anchor" in why("closest_to(dog, ball)", CLOSE)


VIEWED = image(
    Thing(0, "dog", centred(0.5, 0.5), depth=0.6),
    Thing(1, "ball", centred(0.5, 0.8), depth=0.2),  # nearest the camera
    Thing(2, "ball", centred(0.6, 0.5), depth=0.4),
    Thing(3, "ball", centred(0.5, 0.3), depth=0.9),
)


@pytest.mark.parametrize("viewer", ["camera", "viewer", "me", "us"])
def test_closest_to_the_camera_is_nearest(viewer):
    assert ids(f"closest_to(ball, {viewer})", VIEWED) == ids("nearest(ball)", VIEWED) == [1]
    assert ids(f"closest_to(ball, {viewer}, 2)", VIEWED) == ids("nearest(ball, 2)", VIEWED) == [2]
    assert ids(f"closest_to(all, {viewer})", VIEWED) == [1]


def test_closest_to_a_camera_in_the_twin_is_that_object():
    twin = image(
        Thing(0, "camera", centred(0.1, 0.1), depth=0.9),
        Thing(1, "ball", centred(0.2, 0.1), depth=0.9),
        Thing(2, "ball", centred(0.9, 0.9), depth=0.1),
    )
    assert ids("closest_to(ball, camera)", twin) == [1]


# ---------------------------------------------------------------------------------------------- at
# thirds with a 0.02 margin: left is cx < 0.313, middle 0.353 < cx < 0.647, right cx > 0.687 (the same for rows)
AT = image(
    Thing(0, "a", centred(0.10, 0.10, 2)),  # top left
    Thing(1, "b", centred(0.50, 0.10, 2)),  # top (middle column)
    Thing(2, "c", centred(0.90, 0.10, 2)),  # top right
    Thing(3, "d", centred(0.10, 0.50, 2)),  # left (middle row)
    Thing(4, "e", centred(0.50, 0.50, 2)),  # center
    Thing(5, "f", centred(0.90, 0.90, 2)),  # bottom right
    Thing(6, "g", centred(0.34, 0.50, 2)),  # on the edge of the left third: in no column
)


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ("left", [0, 3]),
        ("right", [2, 5]),
        ("top", [0, 1, 2]),
        ("bottom", [5]),
        ("center", [4]),
        ("top left", [0]),
        ("top right", [2]),
        ("bottom right", [5]),
        ("bottom left", []),
    ],
)
def test_at(place, expected):
    assert ids(f"at(all, {place})", AT) == expected
    if expected:
        assert why(f"at(all, {place})", AT) == f"at the {place}"
    else:
        assert why(f"at(all, {place})", AT) == f"nothing at the {place}"


def test_at_on_a_video_uses_the_mean_centre():
    v = video(2, Track(0, "car", {0: centred(0.1, 0.5), 1: centred(0.3, 0.5)}))  # mean cx 0.2: left
    assert ids("at(car, left)", v) == [0] and ids("at(car, center)", v) == []


# ---------------------------------------------------------------------------------------------- superlatives
# four books with distinct centres, areas and depths, and a lamp that beats every one of them
BOOKS = image(
    Thing(0, "book", (10, 10, 20, 30), depth=0.7),  # cx 0.15, cy 0.20, area 200
    Thing(3, "book", (30, 50, 34, 54), depth=0.2),  # cx 0.32, cy 0.52, area 16
    Thing(5, "book", (60, 20, 80, 60), depth=0.5),  # cx 0.70, cy 0.40, area 800
    Thing(8, "book", (85, 70, 95, 75), depth=0.9),  # cx 0.90, cy 0.725, area 50
    Thing(1, "lamp", (1, 1, 99, 99), depth=0.05),  # wider, higher, bigger, nearer than any book
    Thing(2, "pin", (98, 98, 99, 99), depth=0.95),  # right-, lowest, smallest, farthest of all
)


@pytest.mark.parametrize(
    ("op", "order"),
    [
        ("leftmost", [0, 3, 5, 8]),
        ("rightmost", [8, 5, 3, 0]),
        ("highest", [0, 5, 3, 8]),
        ("lowest", [8, 3, 5, 0]),
        ("largest", [5, 0, 8, 3]),
        ("smallest", [3, 8, 0, 5]),
        ("nearest", [3, 5, 0, 8]),
        ("farthest", [8, 0, 5, 3]),
    ],
)
def test_superlatives_with_ordinals(op, order):
    assert ids(f"{op}(book)", BOOKS) == [order[0]]
    for k, expected in enumerate(order, start=1):
        assert ids(f"{op}(book, {k})", BOOKS) == [expected], (op, k)
    assert why(f"{op}(book)", BOOKS) == f"{op} of 4"
    assert why(f"{op}(book, 2)", BOOKS) == f"2nd {op} of 4"
    assert why(f"{op}(book, 3)", BOOKS) == f"3rd {op} of 4"
    assert why(f"{op}(book, 4)", BOOKS) == f"4th {op} of 4"
    assert ids(f"{op}(book, 5)", BOOKS) == []
    assert why(f"{op}(book, 5)", BOOKS) == f"only 4 to rank, no 5th {op}"
    assert why(f"{op}(piano)", BOOKS) == "no object called 'piano'"


def test_superlatives_rank_only_the_given_set():
    assert ids("leftmost(all)", BOOKS) == [0]  # the wide lamp's centre (0.50) is not the leftmost: centres rank
    assert ids("highest(all)", BOOKS) == [0]
    assert ids("largest(all)", BOOKS) == [1] and ids("nearest(all)", BOOKS) == [1]
    assert ids("smallest(all)", BOOKS) == [2] and ids("farthest(all)", BOOKS) == [2]
    assert ids("lowest(all)", BOOKS) == [2] and ids("rightmost(all)", BOOKS) == [2]


def test_depth_superlatives_need_depth():
    no_depth = image(Thing(0, "cup", (0, 0, 10, 10)), Thing(1, "cup", (20, 0, 30, 10)))
    assert "nearest needs depth" in why("nearest(cup)", no_depth)
    assert "farthest needs depth" in why("farthest(cup)", no_depth)
    part = image(Thing(0, "cup", (0, 0, 10, 10)), Thing(1, "cup", (20, 0, 30, 10), depth=0.9))
    assert ids("nearest(cup)", part) == [1] and ids("farthest(cup)", part) == [1]  # unknown depth is not ranked
    assert why("nearest(cup)", part) == "nearest of 1"


def test_superlative_ties_go_to_the_smaller_id():
    twin = image(Thing(7, "cup", (10, 10, 20, 20)), Thing(2, "cup", (10, 50, 20, 60)))  # same centre x, same area
    assert ids("leftmost(cup)", twin) == [2] and ids("leftmost(cup, 2)", twin) == [7]
    assert ids("largest(cup)", twin) == [2]


# ---------------------------------------------------------------------------------------------- union / exclude
def test_union():
    assert ids("union(ball, cat)", LR) == [0, 1, 2, 3, 4]  # id order
    assert ids("union(#4, #0, #2)", LR) == [0, 2, 4]
    assert ids("union(#4, #4)", LR) == [4]
    assert ids("union(cat, piano)", LR) == [0]
    assert why("union(cat, piano)", LR) == "no object called 'piano'"  # what matched nothing is said
    assert ids("union(piano, violin)", LR) == []
    assert why("union(piano, violin)", LR) == "no object called 'piano'; no object called 'violin'"
    assert ids("union(left(ball, box), right(ball, box), cat, box)", LR) == [0, 1, 4, 5]


def test_exclude():
    assert ids("exclude(ball, #1)", LR) == [2, 3, 4]
    assert why("exclude(ball, #1)", LR) == "1 excluded"
    assert ids("exclude(all, ball)", LR) == [0, 5]
    assert why("exclude(all, ball)", LR) == "4 excluded"
    assert ids("exclude(cat, ball)", LR) == [0] and why("exclude(cat, ball)", LR) == ""
    assert ids("exclude(cat, piano)", LR) == [0]  # excluding nothing keeps everything
    assert why("exclude(cat, cat)", LR) == "all of them are excluded"
    assert why("exclude(piano, cat)", LR) == "no object called 'piano'"


# ---------------------------------------------------------------------------------------------- track predicates
# 6 frames at 2 fps (0.5 s apart), 10 x 10 boxes unless said otherwise:
#   0 car    all frames, cx 0.1 -> 0.6 (right), depth 0.8 -> 0.3 (approaches), speed 0.5 / 2.5 s = 0.2
#   1 person frames 2..5, still at (0.8, 0.2), depth 0.5: enters
#   2 dog    frames 0..3, cy 0.80 -> 0.65 (up, 0.05 a frame), depth 0.3 -> 0.6 (recedes): leaves; speed 0.15 / 1.5 s
#   3 ball   all frames, cy 0.1 0.2 0.3 0.4 0.4 0.4 at cx 0.9: moves down, then stops; speed 0.3 / 2.5 s = 0.12
#   4 tree   all frames, still at (0.5, 0.85), depth 0.9
#   5 bird   frames 1..5, cx 0.85 -> 0.25 at cy 0.3 (left, 0.15 a frame): enters; speed 0.6 / 2 s = 0.3
#   6 drone  all frames, still at (0.2, 0.1), no depth, box 10 -> 20 px wide (4x the area: approaches)
def _clip():
    car = Track(0, "car", {k: centred(0.1 + 0.1 * k, 0.5) for k in range(6)}, {k: 0.8 - 0.1 * k for k in range(6)})
    person = Track(1, "person", {k: centred(0.8, 0.2) for k in range(2, 6)}, {k: 0.5 for k in range(2, 6)})
    dog = Track(2, "dog", {k: centred(0.3, 0.8 - 0.05 * k) for k in range(4)}, {k: 0.3 + 0.1 * k for k in range(4)})
    ball = Track(3, "ball", {k: centred(0.9, min(0.1 + 0.1 * k, 0.4)) for k in range(6)})
    tree = Track(4, "tree", {k: centred(0.5, 0.85) for k in range(6)}, {k: 0.9 for k in range(6)})
    bird = Track(5, "bird", {k: centred(0.85 - 0.15 * (k - 1), 0.3) for k in range(1, 6)})
    drone = Track(6, "drone", {k: (20 - (5 + k), 10 - (5 + k), 20 + 5 + k, 10 + 5 + k) for k in range(6)})
    return video(6, car, person, dog, ball, tree, bird, drone, fps=2.0)


CLIP = _clip()


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("enters(all)", [1, 5]),
        ("leaves(all)", [2]),
        ("moves_left(all)", [5]),
        ("moves_right(all)", [0]),
        ("moves_up(all)", [2]),
        ("moves_down(all)", [3]),
        ("still(all)", [1, 4, 6]),
        ("stops(all)", [3]),
        ("keeps_moving(all)", [0, 2, 5]),
        ("approaches(all)", [0, 6]),
        ("recedes(all)", [2]),
        ("fastest(all)", [5]),
        ("fastest(all, 2)", [0]),
        ("fastest(all, 3)", [3]),
        ("slowest(exclude(all, still(all)))", [2]),
        ("slowest(all)", [1]),  # three never move (speed 0): the smallest id
        ("appears_first(all)", [0]),  # four are there from the start: the smallest id
        ("appears_first(all, 5)", [6]),
        ("appears_first(all, 6)", [5]),
        ("appears_first(all, 7)", [1]),
        ("appears_first(enters(all))", [5]),
        ("appears_last(all)", [1]),
        ("appears_last(all, 2)", [5]),
        ("appears_last(person|bird|tree)", [1]),
        ("moves_right(car|dog|tree)", [0]),
        ("enters(car)", []),
        ("leftmost(all)", [6]),  # mean centre over the frames an object is seen in
        ("rightmost(all)", [3]),
        ("largest(all)", [6]),
    ],
)
def test_track_operators(plan, expected):
    assert ids(plan, CLIP) == expected


def test_track_operators_say_why():
    assert why("enters(all)", CLIP) == "appear after the start"
    assert why("enters(car|tree)", CLIP) == "none of 2 appear after the start"
    assert why("stops(piano)", CLIP) == "no object called 'piano'"
    assert why("fastest(all, 2)", CLIP) == "2nd fastest of 7"


@pytest.mark.parametrize(
    "op",
    [
        *("enters", "leaves", "approaches", "recedes", "moves_left", "moves_right", "moves_up", "moves_down"),
        *("still", "stops", "keeps_moving", "fastest", "slowest", "appears_first", "appears_last"),
    ],
)
def test_track_operator_on_an_image_is_an_error(op):
    out = run(f"{op}(all)", LR)
    assert out.selection is None
    assert out.error == f"{op} needs a video; this twin is a single image"
    assert run(f"union(cat, {op}(ball))", LR).error == out.error  # also when nested


def test_track_thresholds():
    # moves_*: the centre ends up 5% of the frame away; still: a path under 4%; keeps_moving: the last third of the
    # frames (at least two) cover 3% or more
    v = video(
        3,
        Track(0, "a", {0: centred(0.50, 0.5), 1: centred(0.51, 0.5), 2: centred(0.53, 0.5)}),  # 0.03 right, path 0.03
        Track(1, "b", {0: centred(0.50, 0.2), 1: centred(0.52, 0.2), 2: centred(0.56, 0.2)}),  # 0.06 right, tail 0.04
        Track(2, "c", {0: centred(0.50, 0.8), 1: centred(0.54, 0.8), 2: centred(0.50, 0.8)}),  # there and back: 0.08
    )
    assert ids("moves_right(all)", v) == [1]
    assert ids("moves_left(all)", v) == []
    assert ids("still(all)", v) == [0]
    assert ids("keeps_moving(all)", v) == [1, 2]
    # no depth and a constant area: neither approaching nor receding
    assert ids("approaches(all)", v) == [] and ids("recedes(all)", v) == []


def test_video_relations_hold_in_half_of_the_shared_frames():
    # the cat is left of the dog in 2 of the 4 frames (holds), the rat in 1 of 4 (does not); the owl is left of it
    # in its one shared frame (holds)
    dog = Track(0, "dog", {k: centred(0.5, 0.5) for k in range(4)})
    cat = Track(1, "cat", {k: centred(0.2 if k < 2 else 0.8, 0.2) for k in range(4)})
    rat = Track(2, "rat", {k: centred(0.2 if k < 1 else 0.8, 0.8) for k in range(4)})
    owl = Track(3, "owl", {3: centred(0.1, 0.1)})
    v = video(4, dog, cat, rat, owl)
    assert ids("left(all, dog)", v) == [1, 3]
    assert ids("right(all, dog)", v) == [1, 2]


def test_video_closest_to_averages_over_the_shared_frames():
    dog = Track(0, "dog", {0: centred(0.5, 0.5), 1: centred(0.5, 0.5)})
    a = Track(1, "ball", {0: centred(0.6, 0.5), 1: centred(0.9, 0.5)})  # 0.1 then 0.4: 0.25 on average
    b = Track(2, "ball", {0: centred(0.7, 0.5), 1: centred(0.7, 0.5)})  # 0.2
    c = Track(3, "ball", {1: centred(0.55, 0.5)})  # 0.05, in its one shared frame
    v = video(2, dog, a, b, c)
    assert ids("closest_to(ball, dog)", v) == [3]
    assert ids("closest_to(ball, dog, 2)", v) == [2]
    assert ids("closest_to(ball, dog, 3)", v) == [1]


def test_video_between_holds_in_half_of_the_frames_showing_all_three():
    lamp = Track(0, "lamp", {k: centred(0.1, 0.5) for k in range(2)})
    plant = Track(1, "plant", {k: centred(0.9, 0.5) for k in range(2)})
    cat = Track(2, "cat", {0: centred(0.5, 0.5), 1: centred(0.5, 0.9)})  # between in 1 of 2 frames
    rat = Track(3, "rat", {0: centred(0.5, 0.9), 1: centred(0.5, 0.9)})  # in neither
    owl = Track(4, "owl", {2: centred(0.5, 0.5)})  # never seen with them
    v = video(3, lamp, plant, cat, rat, owl)
    assert ids("between(all, lamp, plant)", v) == [2]


def test_approach_from_depth_and_recede():
    v = video(
        3,
        Track(0, "a", {k: centred(0.2, 0.5) for k in range(3)}, {0: 0.50, 1: 0.50, 2: 0.44}),  # -0.06: approaches
        Track(1, "b", {k: centred(0.5, 0.5) for k in range(3)}, {0: 0.50, 1: 0.40, 2: 0.46}),  # -0.04: neither
        Track(2, "c", {k: centred(0.8, 0.5) for k in range(3)}, {0: 0.40, 2: 0.46}),  # +0.06: recedes
    )
    assert ids("approaches(all)", v) == [0]
    assert ids("recedes(all)", v) == [2]


# ---------------------------------------------------------------------------------------------- relabel
RELABEL = image(
    Thing(0, "mug", (10, 10, 30, 30), score=0.8, alts=(("cup", 0.6), ("glass", 0.2))),
    Thing(1, "book", (50, 10, 60, 30), score=None),
    Thing(2, "book", (70, 10, 80, 30)),
)


def test_relabel_without_a_labeller_uses_the_twin_labels():
    assert ids("relabel(#0, cup|bottle)", RELABEL) == [0]
    assert why("relabel(#0, cup|bottle)", RELABEL) == "cup 60% (no labeller: twin labels)"
    assert why("relabel(#0, mug|cup)", RELABEL) == "mug 80% (no labeller: twin labels)"
    assert why("relabel(#0, coffee mug)", RELABEL) == "coffee mug 40% (no labeller: twin labels)"  # half a word match
    assert why("relabel(#1, book)", RELABEL) == "book 100% (no labeller: twin labels)"  # no score counts as sure
    assert ids("relabel(#0, bottle|plate)", RELABEL) == []
    assert why("relabel(#0, bottle|plate)", RELABEL) == "0 mug is none of bottle, plate (no labeller: twin labels)"


def test_relabel_needs_one_object():
    assert why("relabel(book, novel)", RELABEL) == "relabel needs one object, got 2 (1 book, 2 book)"
    assert run("relabel(book, novel)", RELABEL).selection is None
    assert why("relabel(piano, novel)", RELABEL) == "no object called 'piano'"
    assert run("relabel(piano, novel)", RELABEL).selection == Selection((), "no object called 'piano'")


class FakePerception:
    """A detector that returns the given masks for every phrase, and a labeller with a fixed score table."""

    def __init__(self, masks=(), scores=None):
        self.masks = list(masks)
        self.scores = scores or {}
        self.calls = []

    def detect(self, image, phrases, threshold):
        self.calls.append(("detect", tuple(phrases), threshold, image.shape))
        return [(Detection((0.0, 0.0, 1.0, 1.0), phrases[0], 0.77, [("pc", 0.4)]), m, d) for m, d in self.masks]

    def classify(self, image, boxes, candidates):
        self.calls.append(("classify", tuple(boxes), tuple(candidates)))
        return [sorted(((c, self.scores.get(c, 0.1)) for c in candidates), key=lambda p: -p[1]) for _ in boxes]


def _frames(twin):
    h, w = twin.size
    return {fr.index: np.zeros((h, w, 3), np.uint8) for fr in twin.frames}


def test_relabel_with_a_labeller_changes_the_working_twin():
    twin = RELABEL.model_copy(deep=True)
    fake = FakePerception(scores={"teacup": 0.9, "cup": 0.5})
    ctx = context(twin, perception=fake, frames=_frames(twin))
    assert ids("relabel(#0, cup|teacup)", ctx) == [0]
    assert fake.calls == [("classify", ((10.0, 10.0, 30.0, 30.0),), ("cup", "teacup"))]
    inst = twin.frames[0].instances[0]
    assert inst.label == "teacup" and inst.score == 0.9
    assert [a for a, _ in inst.alt_labels][:2] == ["mug", "cup"]
    assert ctx.log == ["relabel: 0 -> 'teacup'"]
    assert ids("teacup", ctx) == [0]  # the scene and the names follow the new label
    assert RELABEL.frames[0].instances[0].label == "mug"
    fresh = context(RELABEL.model_copy(deep=True), perception=fake, frames=_frames(twin))
    assert why("relabel(#0, cup|teacup)", fresh) == "labeller: teacup 90%"


# ---------------------------------------------------------------------------------------------- detect
DESK = image(Thing(0, "table", (0, 50, 100, 100), depth=0.6), Thing(1, "lamp", (10, 10, 20, 40), depth=0.4))


def test_detect_without_perception_is_an_error():
    out = run("detect(laptop)", DESK)
    assert out.selection is None
    assert out.error == "detect needs the source image and the perception models; this twin was loaded without them"
    out = run("detect(laptop)", DESK, perception=FakePerception(), frames={5: np.zeros((100, 100, 3), np.uint8)})
    assert out.error == "detect needs the source image of a twin frame; none of the given frames match the twin"
    out = run("detect(laptop)", DESK, frames=_frames(DESK))
    assert "perception models" in out.error


def test_detect_relabels_an_overlapping_instance_and_adds_the_rest():
    twin = DESK.model_copy(deep=True)
    table_mask = box_mask(100, 100, (0, 50, 100, 100))
    new_mask = box_mask(100, 100, (60, 20, 80, 40))
    depth = DepthStats(mean=0.3, std=0.0, min=0.3, max=0.3)
    fake = FakePerception([(table_mask, None), (new_mask, depth)])
    ctx = context(twin, perception=fake, frames=_frames(twin), detect_threshold=0.2)
    assert ids("detect(laptop)", ctx) == [0, 2]
    assert fake.calls == [("detect", ("laptop",), 0.2, (100, 100, 3))]
    insts = {i.id: i for i in twin.frames[0].instances}
    assert insts[0].label == "laptop" and insts[0].score == 0.77 and ("table", 0.9) in insts[0].alt_labels
    assert insts[2].label == "laptop" and insts[2].box == (60.0, 20.0, 80.0, 40.0) and insts[2].depth == depth
    assert insts[2].alt_labels == [("pc", 0.4)]
    assert ctx.log == ["detect: relabelled 0 'table' -> 'laptop' in frame 0", "detect: added 2 'laptop' in frame 0"]
    assert DESK.frames[0].instances[0].label == "table"  # only the working copy changes


def test_detect_feeds_the_outer_operator():
    twin = DESK.model_copy(deep=True)
    masks = [box_mask(100, 100, (60, 20, 80, 40)), box_mask(100, 100, (30, 20, 40, 40))]
    ctx = context(twin, perception=FakePerception([(m, None) for m in masks]), frames=_frames(twin))
    assert ids("leftmost(detect(laptop))", ctx) == [3]  # new ids 2 and 3, the second further left
    assert ids("laptop", ctx) == [2, 3]


def test_detect_finding_nothing():
    ctx = context(DESK.model_copy(deep=True), perception=FakePerception(), frames=_frames(DESK))
    assert run("detect(laptop)", ctx).selection == Selection((), "the detector found no 'laptop'")


def test_detect_bad_mask_shape_is_an_error():
    fake = FakePerception([(np.ones((10, 10), bool), None)])
    out = run("detect(laptop)", DESK.model_copy(deep=True), perception=fake, frames=_frames(DESK))
    assert out.error == "perception returned a 10x10 mask for a 100x100 twin"


def test_detect_on_an_empty_twin_starts_at_id_0():
    twin = image()
    fake = FakePerception([(box_mask(100, 100, (10, 10, 20, 20)), None)])
    assert ids("detect(cup)", context(twin, perception=fake, frames=_frames(twin))) == [0]


def test_detect_on_a_video_links_new_tracks_across_frames():
    twin = video(3, Track(0, "road", {k: (0, 80, 100, 100) for k in range(3)}))
    # the same new object in every frame, moving a little: one new track (id 1)
    boxes = iter([(10, 10, 30, 30), (11, 10, 31, 30), (12, 10, 32, 30)])

    class Moving(FakePerception):
        def detect(self, image, phrases, threshold):
            return [(Detection((0, 0, 1, 1), phrases[0], 0.6), box_mask(100, 100, next(boxes)), None)]

    ctx = context(twin, perception=Moving(), frames=_frames(twin))
    assert ids("detect(dog)", ctx) == [1]
    assert [fr.ids for fr in twin.frames] == [[0, 1], [0, 1], [0, 1]]
    assert ids("still(dog)", ctx) == [1]  # one track that moved 0.02 in all


def test_detect_on_a_long_video_scans_at_most_max_detect_frames():
    twin = video(10, Track(0, "road", {k: (0, 80, 100, 100) for k in range(10)}))
    fake = FakePerception()
    run("detect(dog)", twin, perception=fake, frames=_frames(twin), max_detect_frames=3)
    assert len(fake.calls) == 3


# ---------------------------------------------------------------------------------------------- the context
def test_slack_scales_the_tolerances():
    # cx 0.48 against 0.50: not left at slack 1 (needs 0.03), left at slack 0.5 (needs 0.015)
    assert ids("left(#2, box)", LR) == []
    assert ids("left(#2, box)", LR, slack=0.5) == [2]


def test_an_operator_error_inside_a_plan_is_reported():
    def boom(ctx, a):
        raise ToolError("boom")

    def crash(ctx, a):
        raise ZeroDivisionError("division by zero")

    reg = ToolRegistry([Tool("boom", (Param("A", "set"),), boom, "x"), Tool("crash", (Param("A", "set"),), crash, "x")])
    ctx = context(LR)
    expr, err = parse_program("boom(cat)", reg)
    assert err is None and evaluate(expr, ctx, reg).error == "boom"
    expr, _ = parse_program("crash(cat)", reg)
    assert evaluate(expr, ctx, reg).error == "the plan failed: ZeroDivisionError: division by zero"


def test_context_without_a_matcher_says_so():
    expr, _ = parse_program("cup")
    out = evaluate(expr, ToolContext(twin=LR))
    assert out.error == "no name matcher: the executor did not set one up"
    ctx = ToolContext(twin=LR, matcher=NameMatcher(use_embeddings=False))
    assert evaluate(parse_program("all")[0], ctx).error is None
