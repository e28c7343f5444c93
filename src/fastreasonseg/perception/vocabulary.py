"""Object names the labeller looks for.

:data:`DEFAULT_VOCABULARY` is a built-in list of everyday object names (COCO's 80 classes plus
common LVIS / Objects365-style household, street, animal, food, tool and clothing names).
:func:`build_vocabulary` combines it with the user's names (``PerceptionConfig.vocabulary``) and
:func:`vocabulary_for_query` adds the nouns of a question, with a small dependency-free heuristic
(no NLP library): words that are not stop words, verbs or adjectives from a short list, plus
adjacent pairs of such words ("traffic light", "coffee mug").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

_GROUPS = {
    "people": "person, man, woman, child, baby, boy, girl, player, rider",
    "vehicles": (
        "bicycle, car, motorcycle, airplane, bus, train, truck, boat, van, taxi, scooter, skateboard, "
        "surfboard, snowboard, skis, kayak, canoe, tractor, wheelchair, stroller, helicopter, ship, sailboat, "
        "jet ski, cart, trailer"
    ),
    "street": (
        "traffic light, fire hydrant, stop sign, parking meter, bench, street sign, street light, pole, "
        "traffic cone, fence, road, sidewalk, crosswalk, building, house, bridge, tree, bush, flower, grass, "
        "rock, mailbox, trash can, billboard, umbrella, flag, statue, fountain, tent, tower, gate"
    ),
    "animals": (
        "bird, cat, dog, horse, sheep, cow, elephant, bear, zebra, giraffe, duck, goose, chicken, pigeon, "
        "parrot, owl, eagle, swan, fish, goldfish, shark, dolphin, whale, turtle, frog, snake, lizard, "
        "rabbit, mouse, squirrel, deer, fox, wolf, lion, tiger, leopard, monkey, gorilla, camel, goat, pig, "
        "donkey, kangaroo, panda, butterfly, bee, spider, crab, octopus"
    ),
    "accessories": (
        "backpack, handbag, tie, suitcase, wallet, purse, hat, cap, helmet, glasses, sunglasses, watch, "
        "scarf, glove, shoe, boot, sneaker, sock, belt, necklace, ring, earring, bracelet, mask"
    ),
    "clothing": "shirt, t-shirt, jacket, coat, dress, skirt, pants, jeans, shorts, sweater, hoodie, uniform, apron",
    "sports": (
        "frisbee, sports ball, ball, football, basketball, soccer ball, tennis ball, baseball, kite, "
        "baseball bat, baseball glove, tennis racket, golf club, hockey stick, net, goal, dumbbell, "
        "yoga mat, paddle, rope"
    ),
    "kitchen": (
        "bottle, wine glass, cup, mug, fork, knife, spoon, bowl, plate, pan, pot, kettle, teapot, jar, "
        "lid, cutting board, tray, napkin, straw, can, jug, pitcher, glass, chopsticks, ladle, spatula, "
        "whisk, rolling pin, grater, colander, thermos, lunch box, coffee maker, blender, toaster, microwave, "
        "oven, stove, refrigerator, dishwasher, sink, faucet, sponge, dish soap"
    ),
    "food": (
        "banana, apple, orange, lemon, lime, grape, strawberry, blueberry, cherry, peach, pear, pineapple, "
        "watermelon, melon, mango, kiwi, avocado, tomato, potato, carrot, broccoli, cucumber, lettuce, "
        "onion, garlic, pepper, corn, mushroom, egg, bread, sandwich, hot dog, pizza, donut, cake, cookie, "
        "muffin, croissant, pastry, cheese, sausage, bacon, steak, chicken wing, rice, noodles, pasta, "
        "salad, soup, sushi, burger, french fries, ice cream, chocolate, candy, coffee, tea, juice, milk, "
        "wine, beer, water bottle, cereal, nut, popcorn"
    ),
    "furniture": (
        "chair, couch, sofa, armchair, stool, bed, pillow, blanket, cushion, dining table, table, desk, "
        "shelf, bookshelf, cabinet, drawer, wardrobe, dresser, nightstand, coffee table, potted plant, plant, "
        "vase, lamp, chandelier, ceiling fan, curtain, blinds, rug, carpet, mirror, picture frame, painting, "
        "poster, clock, door, window, stairs, fireplace, radiator, crib, hanger, basket, box"
    ),
    "bathroom": (
        "toilet, bathtub, shower, towel, toothbrush, toothpaste, soap, shampoo, hair drier, comb, hairbrush, "
        "razor, tissue, toilet paper, laundry basket, washing machine"
    ),
    "electronics": (
        "tv, television, laptop, computer, monitor, keyboard, computer mouse, remote, cell phone, "
        "smartphone, tablet, camera, headphones, speaker, microphone, charger, cable, power outlet, "
        "light switch, router, printer, game controller, projector, radio, fan, air conditioner, "
        "vacuum cleaner, iron, drone"
    ),
    "office": (
        "book, notebook, paper, envelope, pen, pencil, marker, scissors, stapler, tape, ruler, calculator, "
        "folder, calendar, sticky note, whiteboard, chalkboard, globe, map, sign, label, card, ticket, "
        "newspaper, magazine"
    ),
    "tools": (
        "hammer, screwdriver, wrench, pliers, saw, drill, axe, shovel, rake, broom, mop, bucket, ladder, "
        "toolbox, nail, screw, flashlight, hose, watering can, lawn mower, wheelbarrow, paintbrush, "
        "paint can, glue, key, lock, chain, battery, candle, lighter, match"
    ),
    "toys and misc": (
        "teddy bear, doll, toy, toy car, puzzle, balloon, gift, bag, plastic bag, shopping bag, paper bag, "
        "cardboard box, bin, barrel, crate, pallet, tire, wheel, guitar, piano, violin, drum, trumpet, "
        "musical instrument, microphone stand, trophy, medal, coin, banknote, credit card, passport, "
        "cigarette, pipe, cane, crutch, umbrella stand, leash, collar, cage, aquarium, bird feeder, nest"
    ),
}


def _unique(names: Iterable[str]) -> list[str]:
    out: dict[str, None] = {}
    for n in names:
        n = " ".join(str(n).strip().lower().split())
        if n:
            out.setdefault(n, None)
    return list(out)


DEFAULT_VOCABULARY: tuple[str, ...] = tuple(_unique(n for g in _GROUPS.values() for n in g.split(",")))
"""Built-in object names (a few hundred), lower case, no duplicates."""


def build_vocabulary(extra: Iterable[str] = (), *, use_default: bool = True, query: str | None = None) -> list[str]:
    """The labeller's vocabulary: the defaults (optional), the user's ``extra`` names, the nouns of ``query``.

    User and query names come first so a short detection budget never drops them.
    """
    names: list[str] = list(extra)
    if query:
        names += vocabulary_for_query(query)
    if use_default:
        names += DEFAULT_VOCABULARY
    return _unique(names)


_STOP = set(
    """
    a an the this that these those there here it its it's they them their he she his her him we us our you your i
    me my mine of in on at to from by with without for about into onto over under above below behind between near
    next beside left right front back top bottom side middle center centre and or but not no nor so than then too
    very just only also all any some each every both either neither one two three four five first second third
    last other another same which what who whom whose where when why how is are was were be been being am do does
    did done has have had having can could would should will shall may might must let lets please find show
    segment select highlight mark locate identify point give tell get see look looks looking object objects thing
    things something anything stuff item items part parts kind type sort piece pieces image picture photo scene
    video frame frames area region place someone somebody anyone people's as if like most more less least many
    much few lot lots used use using holding hold holds held sitting sits sit standing stands stand lying lies lie
    moving moves move running runs run walking walks walk wearing wears wear eating eats eat drinking drinks drink
    playing plays play going goes go coming comes come made make makes keep kept could'd biggest smallest largest
    closest nearest farthest furthest big small large little tall short long red green blue yellow black white
    brown gray grey orange purple pink dark light bright old new young best good bad whole entire other's
    currently usually typically often always never again
    """.split()  # noqa: SIM905
)


def vocabulary_for_query(query: str) -> list[str]:
    """Candidate object names in a free-text query: content words and adjacent content-word pairs.

    A heuristic, not a parser: ``"the mug left of the laptop"`` gives ``["mug", "laptop"]``;
    ``"which traffic light is red?"`` gives ``["traffic light", "traffic", "light"]`` (a pair first,
    then its words). Plural ``-s`` is stripped when the singular is a known name.
    """
    words = re.findall(r"[a-zA-Z][a-zA-Z'-]*", query.lower())
    known = set(DEFAULT_VOCABULARY)
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 2:
            for a, b in itertools.pairwise(run):
                out.append(_singular(f"{a} {b}", known))
        out.extend(_singular(w, known) for w in run)
        run.clear()

    for w in words:
        w = w.strip("'-")
        if not w or w in _STOP or len(w) < 2 or w.endswith("ly"):
            flush()
            continue
        run.append(w)
    flush()
    return _unique(out)


def _singular(w: str, known: set[str]) -> str:
    if w in known:
        return w
    for suffix, repl in (("ies", "y"), ("ves", "f"), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 1:
            cand = w[: -len(suffix)] + repl
            if cand in known:
                return cand
    if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        return w[:-1]
    return w
