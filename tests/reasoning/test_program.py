"""The plan language itself: parsing, printing, limits, bad input, evaluation errors, and properties of the answers
(renumbering ids, mirroring the frame, id 0)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastreasonseg.reasoning.program import (
    MAX_DEPTH,
    MAX_NAME_CHARS,
    MAX_NAMES,
    MAX_NODES,
    AllObjects,
    Call,
    Names,
    Outcome,
    Ref,
    evaluate,
    format_program,
    operators_of,
    parse_program,
)
from fastreasonseg.reasoning.tools import Selection, default_registry

from .helpers import image_twin, many_twin, video_twin
from .scenes import Thing, Track, centred, context, ids, image, mirrored, plan_strategies, renumbered, run, video, why

REG = default_registry()
NAME, EXPRESSIONS = plan_strategies()
PROPERTY = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SCENE_PROPERTY = settings(PROPERTY, max_examples=50)


# ---------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "plan",
    [  # the examples of the module docstring, in canonical form
        "nearest(shirt|sock)",
        "on(all, dryer)",
        "leftmost(on(book, cart), 2)",
        "exclude(dog|cat, on(all, table))",
        "union(cart, near(person, cart))",
        "appears_first(enters(person))",
        "#0",
        "all",
        "coffee mug|cup",
        "at(all, top left)",
        "between(chair, #3, rock's edge)",
        "union(a, b, c, d)",
        "relabel(#12, cup|mug|glass)",
        "detect(red toy car)",
        "closest_to(ball, dog, 9)",
    ],
)
def test_canonical_plans_round_trip(plan):
    expr, err = parse_program(plan)
    assert err is None, err
    assert format_program(expr) == plan


def test_parse_structure():
    assert parse_program("all") == (AllObjects(), None)
    assert parse_program("#0") == (Ref(0), None)
    assert parse_program("cup|mug") == (Names(("cup", "mug")), None)
    expr, _ = parse_program("leftmost(on(book, cart), 2)")
    assert expr == Call("leftmost", (Call("on", (Names(("book",)), Names(("cart",)))), 2))
    assert parse_program("nearest(cup)")[0] == Call("nearest", (Names(("cup",)), None))  # the left-out ordinal
    assert parse_program("at(cup, top left)")[0] == Call("at", (Names(("cup",)), "top left"))
    assert parse_program("relabel(#1, cup|mug)")[0] == Call("relabel", (Ref(1), "cup|mug"))
    assert parse_program("detect(toy car)")[0] == Call("detect", ("toy car",))
    assert parse_program("union(a, b, c)")[0] == Call("union", (Names(("a",)), Names(("b",)), Names(("c",))))


def test_parse_normalises_spacing_case_and_duplicates():
    expr, err = parse_program("  leftmost( on(Book ,Cart ) ,2 ) \n")
    assert err is None and format_program(expr) == "leftmost(on(book, cart), 2)"
    assert format_program(parse_program("Coffee   Mug | CUP|cup")[0]) == "coffee mug|cup"
    assert format_program(parse_program("at(cup,  Top   Left)")[0]) == "at(cup, top left)"
    assert format_program(parse_program("# 7")[0]) == "#7"
    assert parse_program("ALL") == (AllObjects(), None)


def test_operators_of():
    expr, _ = parse_program("union(leftmost(on(book, cart), 2), near(person, #1), all)")
    assert operators_of(expr) == ["union", "leftmost", "on", "near"]
    assert operators_of(parse_program("cup")[0]) == []


@given(EXPRESSIONS)
@PROPERTY
def test_every_expression_round_trips(expr):
    text = format_program(expr)
    parsed, err = parse_program(text)
    assert err is None, (text, err)
    assert parsed == expr
    assert format_program(parsed) == text


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("plan", "fragment"),
    [
        ("fly(cup)", "unknown operator 'fly'; operators: union, exclude, "),
        ("Nearest(cup)", "unknown operator 'Nearest'"),
        ("all(cup)", "unknown operator 'all'"),
        ("(cup)", "unknown operator '(nothing)'"),
        ("left(cup)", "left needs 2 arguments: left(A, B)"),
        ("between(cup, box)", "between needs 3 arguments"),
        ("left(a, b, c)", "too many arguments for left(A, B)"),
        ("nearest(a, 2, 3)", "too many arguments for nearest"),
        ("union(a, b, c, d, e)", "too many arguments for union"),
        ("detect(a, b)", "too many arguments for detect"),
        ("nearest(cup, 0)", "nearest: the ordinal must be 1..9, got '0'"),
        ("nearest(cup, 10)", "nearest: the ordinal must be 1..9, got '10'"),
        ("leftmost(book, second)", "leftmost: the ordinal must be 1..9, got 'second'"),
        ("nearest(cup, )", "the ordinal must be 1..9, got ''"),
        ("at(cup, middle)", "at: place must be one of left, right, top, bottom, center, top left"),
        ("at(cup, #1)", "place must be one of"),
        ("at(cup)", "at needs 2 arguments"),
        ("nearest(cup", "expected ')' at 'the end'"),
        ("nearest cup)", "unexpected text after the expression"),
        ("cup)", "unexpected text after the expression: ')'"),
        ("cup mug, bowl", "unexpected text after the expression"),
        ("", "the plan is empty"),
        ("   \n", "the plan is empty"),
        ("cup||mug", "an empty name"),
        ("nearest()", "an empty name"),
        ("left(, cup)", "an empty name"),
        ("#", "bad object reference #: expected #<id>"),
        ("#x1", "bad object reference #x1"),
        ("#-1", "bad object reference #-1"),
        ("#12345678", "bad object reference #12345678"),
        ("café", "bad name 'café'"),
        ("<answer>", "bad name"),
        ('cup"', "bad name"),
        ("x" * (MAX_NAME_CHARS + 1), f"is longer than {MAX_NAME_CHARS} characters"),
        ("|".join("abcdefghi"), f"more than {MAX_NAMES} names in one list"),
        ("nearest(" * (MAX_DEPTH + 1) + "cup" + ")" * (MAX_DEPTH + 1), f"nests more than {MAX_DEPTH} operators deep"),
        ("nearest(" * 5000 + "cup" + ")" * 5000, f"nests more than {MAX_DEPTH} operators deep"),
        ("a|" * 5000 + "a", f"more than {MAX_NAMES} names"),
        ("a" * 1_000_000, "longer than"),
    ],
)
def test_bad_plans_get_a_clear_message(plan, fragment):
    expr, err = parse_program(plan)
    assert expr is None
    assert fragment in err, err
    assert len(err) < 400


def test_not_text_is_an_empty_plan():
    assert parse_program(None) == (None, "the plan is empty")  # type: ignore[arg-type]
    assert parse_program(3) == (None, "the plan is empty")  # type: ignore[arg-type]


def test_limits_are_inclusive():
    deepest = "nearest(" * MAX_DEPTH + "cup" + ")" * MAX_DEPTH
    assert parse_program(deepest)[1] is None

    # each union(x, x, x, ...) level is 4 nodes (the call and three names)
    def chain(levels: int, last: str) -> str:
        return "union(x, x, x, " * levels + last + ")" * levels

    levels = MAX_NODES // 4 - 1
    assert 4 * levels + 4 == MAX_NODES and levels + 1 <= MAX_DEPTH  # the construction below fits the limits
    at_limit = chain(levels, "union(x, x, x)")
    assert parse_program(at_limit)[1] is None
    over = chain(levels, "union(x, x, x, x)")
    assert "the plan is too long" in parse_program(over)[1]
    assert parse_program("|".join("abcdefgh"))[1] is None  # exactly MAX_NAMES names
    assert parse_program("x" * MAX_NAME_CHARS)[1] is None
    assert parse_program("#9999999")[1] is None


@pytest.mark.parametrize("plan", ["nearest(cup, ²)", "#²", "leftmost(book, ³)"])
def test_non_ascii_digits_get_a_message(plan):
    expr, err = parse_program(plan)
    assert expr is None and err


@given(st.text(alphabet=st.characters(codec="ascii") | st.sampled_from("é ß|(),#"), max_size=80))
@PROPERTY
def test_parse_never_raises(text):
    expr, err = parse_program(text)
    assert (expr is None) != (err is None)
    if expr is not None:
        assert parse_program(format_program(expr)) == (expr, None)


_TOKENS = st.sampled_from(
    ["(", ")", ", ", "|", "#", "#0", "all", "cup", "2", "0", "top left", " ", *REG.names[:12], "left", "at"]
)


@given(st.lists(_TOKENS, max_size=30).map("".join))
@PROPERTY
def test_parse_never_raises_on_plan_like_text(text):
    expr, err = parse_program(text)
    assert (expr is None) != (err is None)
    if expr is not None:
        out = evaluate(expr, context(image_twin()))
        assert isinstance(out, Outcome) and (out.selection is None) != (out.error is None)


# ---------------------------------------------------------------------------------------------- evaluation errors
SHOP = image(
    Thing(0, "laptop", (10, 40, 30, 60), depth=0.4),
    Thing(1, "laptop", (60, 40, 80, 60), depth=0.6),
    Thing(2, "mug", (40, 40, 46, 50), depth=0.5),
    Thing(3, "object", (90, 90, 95, 95), score=0.1),  # detector junk
    Thing(4, "object", (0, 90, 5, 95), score=0.5),  # a sure "object" is not junk
    Thing(5, "floor", (0, 95, 100, 100)),  # a background surface
)


def test_an_ambiguous_anchor_lists_the_candidates():
    out = run("left(mug, laptop)", SHOP)
    assert out.selection is None
    assert out.error == "ambiguous anchor: 2 objects (0 laptop, 1 laptop); name one, e.g. with leftmost(...)"
    assert ids("left(mug, rightmost(laptop))", SHOP) == [2]
    assert ids("right(mug, leftmost(laptop))", SHOP) == [2]


def test_a_missing_anchor_is_an_empty_answer_that_says_why():
    out = run("left(mug, printer)", SHOP)
    assert out.error is None and out.selection == Selection((), "no anchor: no object called 'printer'")
    assert why("left(mug, on(all, printer))", SHOP) == "no anchor: no anchor: no object called 'printer'"
    assert why("left(mug, exclude(mug, mug))", SHOP) == "no anchor: all of them are excluded"


def test_a_name_that_matches_nothing():
    assert run("printer", SHOP).selection == Selection((), "no object called 'printer'")
    assert why("printer|scanner|fax|phone", SHOP) == "no object called 'printer' or 'scanner' or 'fax'"
    assert ids("printer|mug", SHOP) == [2]
    assert why("nearest(printer)", SHOP) == "no object called 'printer'"


def test_unknown_id():
    assert run("#42", SHOP).error == "no object with id 42"
    assert run("left(#42, mug)", SHOP).error == "no object with id 42"
    assert ids("#3", SHOP) == [3]  # a reference selects even junk


def test_all_leaves_out_junk_and_background_but_names_do_not():
    assert ids("all", SHOP) == [0, 1, 2, 4]
    assert ids("object", SHOP) == [3, 4]
    assert ids("floor", SHOP) == [5]
    assert ids("largest(all)", SHOP) == [0]  # not the floor


def test_a_track_operator_on_an_image():
    assert run("enters(all)", SHOP).error == "enters needs a video; this twin is a single image"
    assert run("fastest(laptop)", SHOP).error == "fastest needs a video; this twin is a single image"
    assert run("fastest(laptop)", SHOP).selection is None
    # a one-frame video is an image for the operators
    one = video(1, Track(0, "car", {0: centred(0.5, 0.5)}))
    assert run("moves_left(car)", one).error == "moves_left needs a video; this twin is a single image"


EMPTY = image()


@pytest.mark.parametrize(
    "plan", ["cup", "nearest(cup)", "left(cup, table)", "union(cup, mug)", "#0", "between(all, a, b)", "near(all, a)"]
)
def test_an_empty_twin_never_fails(plan):
    out = run(plan, EMPTY)
    if plan == "#0":
        assert out.error == "no object with id 0"
    else:
        assert out.error is None and out.selection.ids == ()
        assert out.selection.why  # and says why


@pytest.mark.parametrize("plan", ["all", "nearest(all)", "leftmost(all, 2)", "at(all, left)"])
def test_all_on_an_empty_twin_says_why(plan):
    out = run(plan, EMPTY)
    assert out.error is None and out.selection.ids == () and out.selection.why


def test_evaluate_never_raises_on_odd_expressions():
    ctx = context(SHOP)
    assert evaluate(3, ctx).error == "the plan must select objects (a name, all, #id or an operator)"  # type: ignore[arg-type]
    out = evaluate(Call("fly", (AllObjects(),)), ctx)  # not from the parser: an operator not in the registry
    assert out.error.startswith("the plan failed: KeyError")
    out = evaluate(Call("nearest", ()), ctx)  # wrong arity
    assert out.error.startswith("the plan failed: TypeError")
    assert evaluate(AllObjects(), context(None)).error.startswith("the plan failed: ")  # type: ignore[arg-type]


def test_many_objects():
    twin = many_twin(300)
    assert len(ids("all", twin)) == 300
    assert ids("leftmost(thing3)", twin) == [121]  # k = 120 is the only thing3 in the first column
    expected = [k + 1 for k in range(300) if k % 13 in (1, 2, 3, 4)]
    assert ids("union(thing1, thing2, thing3, thing4)", twin) == expected


@given(EXPRESSIONS, st.sampled_from(["image", "video", "empty"]))
@PROPERTY
def test_evaluate_never_raises(expr, which):
    twin = {"image": image_twin, "video": video_twin, "empty": lambda: EMPTY}[which]()
    out = evaluate(expr, context(twin))
    assert isinstance(out, Outcome)
    assert (out.selection is None) != (out.error is None)
    if out.selection is not None:
        assert set(out.selection.ids) <= set(twin.track_ids)
        assert len(set(out.selection.ids)) == len(out.selection.ids)
    else:
        assert isinstance(out.error, str) and out.error
        assert not out.error.startswith("the plan failed"), out.error  # an operator crashed: a bug


# ---------------------------------------------------------------------------------------------- properties
# Scenes on a 128 x 128 frame: every coordinate is a multiple of 1/256 (exact in floating point) and object centres
# lie on 8 columns 16 px apart, so no centre ever sits exactly on an operator's threshold and mirroring is exact.
SIDE = 128
LABELS = ("cup", "book", "lamp", "object", "floor")


@st.composite
def grid_scenes(draw, distinct: bool = False):
    n = draw(st.integers(3, 7))
    cols = draw(st.lists(st.integers(0, 7), min_size=n, max_size=n, unique=distinct))
    rows = draw(st.lists(st.integers(8, 120), min_size=n, max_size=n, unique=distinct))
    depths = st.sampled_from([k / 20 for k in range(21)]) if distinct else st.none() | st.sampled_from([0.2, 0.5])
    things = []
    for k in range(n):
        cx, cy = 8 + 16 * cols[k], rows[k]
        small = 12 if k == 0 else 1  # the anchor "box" is large: things are on it, inside it, above it
        hw = draw(st.integers(min(small, cx, SIDE - cx), min(40, cx, SIDE - cx)))
        hh = draw(st.integers(min(small, cy, SIDE - cy), min(40, cy, SIDE - cy)))
        label = "box" if k == 0 else "bin" if k == 1 else draw(st.sampled_from(LABELS))
        score = 0.1 if label == "object" else 0.9
        things.append(Thing(k, label, (cx - hw, cy - hh, cx + hw, cy + hh), draw(depths), score))
    if distinct:  # no ties for a superlative or closest_to to break by id
        assume(len({(t.box[2] - t.box[0]) * (t.box[3] - t.box[1]) for t in things}) == n)
        assume(len({t.depth for t in things}) == n)
        box = things[0].box
        dist = [
            (t.box[0] + t.box[2] - box[0] - box[2]) ** 2 + (t.box[1] + t.box[3] - box[1] - box[3]) ** 2 for t in things
        ]
        assume(len(set(dist)) == n)
    return image(*things, width=SIDE, height=SIDE)


RENUMBER_PLANS = [
    *(f"{op}(all, box)" for op in ("left", "right", "above", "below", "front", "behind", "near", "on", "inside")),
    "between(all, box, bin)",
    "between(cup|book, bin, box)",
    "closest_to(all, box)",
    "closest_to(cup|book|lamp, box, 2)",
    *(f"{op}(all)" for op in ("leftmost", "rightmost", "highest", "lowest", "largest", "smallest")),
    *(f"{op}(all, 2)" for op in ("nearest", "farthest", "leftmost", "lowest")),
    "largest(cup|book|lamp, 3)",
    "at(all, left)",
    "at(all, top right)",
    "at(all, center)",
    "union(cup, box, bin)",
    "exclude(all, cup)",
    "cup",
    "all",
    "object",
    "floor",
    "leftmost(on(all, box))",
    "nearest(exclude(all, near(all, bin)))",
    "union(left(all, box), right(all, bin))",
]


def _same_up_to(mapping, a: Outcome, b: Outcome) -> None:
    assert (a.error is None) == (b.error is None), (a, b)
    if a.selection is not None:
        assert sorted(mapping[i] for i in a.selection.ids) == sorted(b.selection.ids), (a, b)


@given(grid_scenes(distinct=True), st.data())
@SCENE_PROPERTY
def test_renumbering_ids_renumbers_the_answers(twin, data):
    old = twin.track_ids
    new = data.draw(st.lists(st.integers(0, 40), min_size=len(old), max_size=len(old), unique=True))
    mapping = dict(zip(old, new, strict=True))
    other = renumbered(twin, mapping)
    for plan in RENUMBER_PLANS:
        _same_up_to(mapping, run(plan, twin), run(plan, other))
    for i in old:  # references follow the renumbering
        _same_up_to(mapping, run(f"left(all, #{i})", twin), run(f"left(all, #{mapping[i]})", other))
        _same_up_to(mapping, run(f"#{i}", twin), run(f"#{mapping[i]}", other))


VIDEO_PLANS = [
    *(f"{op}(all)" for op in ("enters", "leaves", "approaches", "recedes", "still", "stops", "keeps_moving")),
    *(f"{op}(all)" for op in ("moves_left", "moves_right", "moves_up", "moves_down", "leftmost", "rightmost")),
    "fastest(all)",
    "fastest(all, 2)",
    "appears_last(all)",
    "appears_first(enters(all))",
    "slowest(exclude(all, still(all)))",
    "left(all, tree)",
    "nearest(all)",
]


def _clip():
    from .test_tools import CLIP

    return CLIP


@given(st.permutations(range(7)))
@settings(max_examples=25, deadline=None, derandomize=True)
def test_renumbering_a_video_renumbers_the_answers(perm):
    mapping = dict(enumerate(perm))
    clip = _clip()
    other = renumbered(clip, mapping)
    for plan in VIDEO_PLANS:
        _same_up_to(mapping, run(plan, clip), run(plan, other))


_SWAP = {"left": "right", "right": "left", "leftmost": "rightmost", "rightmost": "leftmost"}
_SWAP |= {"moves_left": "moves_right", "moves_right": "moves_left"}


def mirror_plan(plan: str) -> str:
    """The plan that asks the same of the mirrored frame: left <-> right (relations, superlatives, places, motion)."""
    return re.sub(r"\b(" + "|".join(_SWAP) + r")\b", lambda m: _SWAP[m.group(1)], plan)


MIRROR_PLANS = [
    *(f"{op}(all, box)" for op in ("left", "right", "above", "below", "front", "behind", "near", "on", "inside")),
    "right(cup|book, bin)",
    "between(all, box, bin)",
    "closest_to(all, box)",
    "closest_to(all, bin, 2)",
    *(f"{op}(all)" for op in ("leftmost", "rightmost", "highest", "lowest", "largest", "smallest", "nearest")),
    "farthest(all)",
    "leftmost(all, 2)",
    "rightmost(cup|book|lamp, 3)",
    "lowest(all, 3)",
    *(f"at(all, {p})" for p in ("left", "right", "top", "bottom", "center", "top left", "top right")),
    *(f"at(all, {p})" for p in ("bottom left", "bottom right")),
    "leftmost(on(all, box))",
    "left(all, rightmost(all))",
    "union(cup, box)",
    "exclude(all, near(all, box))",
]


def test_mirror_plan():
    assert mirror_plan("left(leftmost(all, 2), at(cup, top right))") == "right(rightmost(all, 2), at(cup, top left))"
    assert mirror_plan("moves_left(near(all, #1))") == "moves_right(near(all, #1))"
    assert mirror_plan("highest(at(all, center))") == "highest(at(all, center))"


@given(grid_scenes())
@SCENE_PROPERTY
def test_mirroring_swaps_left_and_right_only(twin):
    flipped = mirrored(twin)
    for plan in MIRROR_PLANS:
        a, b = run(plan, twin), run(mirror_plan(plan), flipped)
        assert a.error == b.error, (plan, a, b)
        if a.selection is not None:
            assert set(a.selection.ids) == set(b.selection.ids), (plan, a, b)
        if plan == mirror_plan(plan):
            assert a == b, plan  # the same facts, too


def test_mirroring_a_video():
    clip = _clip()
    flipped = mirrored(clip)
    for plan in VIDEO_PLANS:
        assert ids(plan, clip) == ids(mirror_plan(plan), flipped), plan
    assert ids("moves_left(all)", clip) == ids("moves_right(all)", flipped) == [5]
    assert ids("moves_right(all)", clip) == ids("moves_left(all)", flipped) == [0]
    assert ids("leftmost(all)", clip) == ids("rightmost(all)", flipped) == [6]


# ---------------------------------------------------------------------------------------------- id 0
def _zero_cases():
    from .test_tools import AB, AT, BETWEEN, BOOKS, CLIP, CLOSE, FB, INSIDE, LR, NEAR, ON

    return [
        (LR, "left(ball, box)", 1),
        (LR, "right(ball, box)", 4),
        (AB, "above(bird|clock, shelf)", 3),
        (AB, "below(shoe|sock, shelf)", 8),
        (FB, "front(all, chair)", 1),
        (FB, "behind(all, chair)", 4),
        (NEAR, "near(lamp|plant, sofa)", 1),
        (ON, "on(cup|bird, table)", 1),
        (INSIDE, "inside(cube|pen, box)", 4),
        (BETWEEN, "between(cup|dog, lamp, plant)", 5),
        (CLOSE, "closest_to(ball, dog)", 2),
        (AT, "at(all, center)", 4),
        (BOOKS, "leftmost(book, 2)", 3),
        (BOOKS, "farthest(book)", 8),
        (CLIP, "enters(bird|car)", 5),
        (CLIP, "stops(all)", 3),
        (CLIP, "fastest(all)", 5),
        (CLIP, "appears_last(all)", 1),
        (CLIP, "moves_up(all)", 2),
    ]


@pytest.mark.parametrize("case", range(len(_zero_cases())))
def test_id_0_as_the_answer_and_as_the_anchor(case):
    twin, plan, answer = _zero_cases()[case]
    assert ids(plan, twin) == [answer]
    ids_ = twin.track_ids
    mapping = {i: i for i in ids_}
    mapping[answer], mapping[0] = 0, answer  # the answer becomes id 0 (and 0 takes its number)
    other = renumbered(twin, mapping)
    assert ids(plan, other) == [0]
    assert ids(f"union(#0, {plan})", other) == [0]
    assert ids(f"exclude({plan}, #0)", other) == [] and why(f"exclude({plan}, #0)", other)


def test_id_0_as_a_reference_everywhere():
    from .test_tools import LR

    assert ids("#0", LR) == [0]
    assert ids("left(#0, box)", LR) == [0]
    assert ids("right(all, #0)", LR) == [1, 2, 3, 4, 5]
    assert ids("closest_to(all, #0)", LR) == [1]
    assert ids("relabel(#0, cat)", LR) == [0]
    # 0 cat at (0.05, 0.05) and 4 ball at (0.56, 0.72): one over the other, so cy in (0.117, 0.653), cx in 0..0.58
    assert ids("between(all, #0, #4)", LR) == [1, 3, 5]
