"""How the synthetic queries are worded: sentence frames and phrase banks, with held-out wordings.

A query is built from pieces: a *frame* ("Show me {np}.", "Which {noun} {verb}?") around a noun phrase, and phrase
banks for what the operators mean in English (a relation: "on top of", "sitting on", "resting on"...; a
superlative: "the biggest", "the one taking up the most room"...; a motion: "heads out of the shot", "walks off"...).
Every bank has plain, casual and indirect variants. The last variant of every bank, and every frame marked held
out, never appears in the training split: val and test ask with wordings the student never saw
(:meth:`Phrasebook.pick`). A sample's ``template_id`` lists the pieces it used (``frame:np.3|rel:on.1``).

The wordings were written for this generator from general English usage; none is taken from an evaluation set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# ------------------------------------------------------------------------------------------------ frames
#: frames around a noun phrase ``{np}`` ("the mug closest to the camera"); a trailing ``*`` marks held-out frames
NP_FRAMES = [
    "{np}",
    "Find {np}.",
    "Show me {np}.",
    "Segment {np}.",
    "Where is {np}?",
    "Can you point out {np}?",
    "Highlight {np}.",
    "I'm looking for {np}.",
    "Please mark {np}.",
    "Select {np}.",
    "Locate {np}.",
    "Help me find {np}.",
    "{np}, please.",
    "Could you segment {np} for me?",
    "I need {np}.",
    "Pick out {np}.",
    "Mask {np}.",
    "Which one is {np}?",
    "where's {np}",
    "Outline {np}.*",
    "Can you find {np} in this?*",
    "Give me a mask of {np}.*",
    "I want to see {np}.*",
]
#: frames around a predicate ``{pred}`` ("on the table", "to the left of the lamp")
WHAT_FRAMES = [
    "What is {pred}?",
    "What's {pred}?",
    "Which objects are {pred}?",
    "Segment everything {pred}.",
    "Show me what is {pred}.",
    "Find whatever is {pred}.",
    "Is there anything {pred}?",
    "what do we have {pred}",
    "Highlight all the things {pred}.",
    "Mark whatever sits {pred}.",
    "Anything {pred}?",
    "Tell me what's {pred}.",
    "Who is {pred}?",
    "who's {pred}",
    "Point to the stuff {pred}.*",
    "What can you see {pred}?*",
    "Select anything that is {pred}.*",
]
#: frames around a clause ``{verb}`` for videos ("leaves the frame"), with a noun ``{noun}`` / plural ``{nouns}``
WHO_FRAMES = [
    "Which {noun} {verb}?",
    "Show me the {noun} that {verb}.",
    "Segment the {noun} that {verb}.",
    "Find every {noun} that {verb}.",
    "the {noun} that {verb}",
    "Track the {noun} which {verb}.",
    "Which of the {nouns} {verb}?",
    "Highlight whichever {noun} {verb}.",
    "I'm interested in the {noun} that {verb}.",
    "Can you mark the {noun} that {verb}?",
    "the {nouns} that {verb_pl}",
    "Point out any {noun} that {verb}.",
    "Find the {nouns} that {verb_pl}.*",
    "Mask the {noun} that {verb}, please.*",
    "Which {noun} is the one that {verb}?*",
]
#: frames for "what / who does X" over every object of a video
WHAT_VERB_FRAMES = [
    "What {verb}?",
    "Which object {verb}?",
    "Show me everything that {verb}.",
    "Segment whatever {verb}.",
    "Find the things that {verb_pl}.",
    "Anything here that {verb}?",
    "What in the video {verb}?",
    "Is there anything that {verb}?",
    "what {verb} in this clip",
    "Highlight anything that {verb}.",
    "Track what {verb}.",
    "Which thing {verb}?*",
    "Mark whatever {verb} in the video.*",
]

#: small talk around a question (the words the student must learn to ignore); ``{q}`` is the question
CHATTER = [
    "{q}",
    "Quick question: {q}",
    "Hey, {q}",
    "ok so {q}",
    "Sorry to bother you. {q}",
    "I just walked in here. {q}",
    "{q} Thanks!",
    "Hmm. {q}",
    "Can you help? {q}",
    "I'm in a bit of a hurry. {q}",
    "{q} I can't find it.",
    "Let me ask you something: {q}",
    "It's been a long day. {q}",
    "So, {q}",
    "{q} Just curious.",
    "Please help me out here. {q}*",
    "{q} That's all I need.*",
]
CHATTER_RATE = 0.3
"""Share of queries wrapped in small talk."""

# ------------------------------------------------------------------------------------------------ phrase banks
#: plan operator -> phrases for "A <phrase> B"; the last of each list is held out
RELATIONS: dict[str, list[str]] = {
    "left": ["to the left of", "left of", "on the left side of", "just left of", "to the left side of"],
    "right": ["to the right of", "right of", "on the right side of", "just right of", "to the right side of"],
    "above": ["above", "over", "up above", "directly above", "hovering over"],
    "below": ["below", "under", "underneath", "beneath", "down under"],
    "front": ["in front of", "closer to the camera than", "nearer to us than", "ahead of", "in the foreground of"],
    "behind": ["behind", "farther away than", "further back than", "in back of", "hidden behind"],
    "near": ["next to", "near", "beside", "close to", "right by", "alongside"],
    "on": ["on", "on top of", "sitting on", "resting on", "lying on", "placed on top of"],
    "inside": ["in", "inside", "within", "inside of", "contained in"],
}
#: superlative operator -> adjectives ("the <adj> mug"); the last is held out
SUP_ADJ: dict[str, list[str]] = {
    "nearest": ["nearest", "closest", "frontmost", "closest-to-the-camera"],
    "farthest": ["farthest", "furthest", "most distant", "farthest-away"],
    "largest": ["largest", "biggest", "huge-looking", "bulkiest"],
    "smallest": ["smallest", "tiniest", "littlest", "most compact"],
    "leftmost": ["leftmost", "left-most", "far-left", "westernmost"],
    "rightmost": ["rightmost", "right-most", "far-right", "easternmost"],
    "highest": ["highest", "topmost", "uppermost", "top-most"],
    "lowest": ["lowest", "bottommost", "bottom-most", "lowermost"],
}
#: superlative operator -> post-modifiers ("the mug <post>"); the last is held out
SUP_POST: dict[str, list[str]] = {
    "nearest": [
        "closest to the camera",
        "nearest to the camera",
        "nearest to me",
        "closest to us",
        "in the very front",
    ],
    "farthest": [
        "farthest from the camera",
        "furthest away",
        "farthest back",
        "deepest in the scene",
        "way at the back",
    ],
    "largest": ["that is the biggest", "taking up the most space", "that looks largest", "that is the largest one"],
    "smallest": ["that is the smallest", "taking up the least space", "that looks tiniest", "that is the smallest one"],
    "leftmost": ["furthest to the left", "farthest left", "on the far left", "at the left edge", "all the way left"],
    "rightmost": [
        "furthest to the right",
        "farthest right",
        "on the far right",
        "at the right edge",
        "all the way right",
    ],
    "highest": ["highest up", "at the very top", "highest in the picture", "up at the top", "nearest the top edge"],
    "lowest": [
        "lowest down",
        "at the very bottom",
        "lowest in the picture",
        "down at the bottom",
        "nearest the bottom edge",
    ],
}
#: ordinal superlatives: "the second <noun> from the left"
ORDINAL_WORDS = {2: ["second", "2nd", "next-to"], 3: ["third", "3rd", "third"]}
ORDINAL_SIDES = {
    "leftmost": ["from the left", "counting from the left"],
    "rightmost": ["from the right", "counting from the right"],
}
#: region words for ``at``: phrases for "the thing in/at <place>"
PLACES: dict[str, list[str]] = {
    "top left": ["in the top-left corner", "at the upper left", "up in the top left", "in the upper-left corner"],
    "top right": ["in the top-right corner", "at the upper right", "up in the top right", "in the upper-right corner"],
    "bottom left": [
        "in the bottom-left corner",
        "at the lower left",
        "down in the bottom left",
        "in the lower-left area",
    ],
    "bottom right": [
        "in the bottom-right corner",
        "at the lower right",
        "down in the bottom right",
        "in the lower-right area",
    ],
    "left": ["on the left side", "over on the left", "in the left part of the picture", "along the left side"],
    "right": ["on the right side", "over on the right", "in the right part of the picture", "along the right side"],
    "top": ["at the top", "along the top", "in the upper part of the picture", "up top"],
    "bottom": ["at the bottom", "along the bottom", "in the lower part of the picture", "down low"],
    "center": ["in the middle", "in the center", "right in the centre of the picture", "dead center"],
}
#: track predicate -> (3rd person singular, plural); the last is held out
MOTIONS: dict[str, list[tuple[str, str]]] = {
    "enters": [
        ("comes into view", "come into view"),
        ("shows up later", "show up later"),
        ("enters the frame", "enter the frame"),
        ("appears after the start", "appear after the start"),
        ("walks into the picture", "walk into the picture"),
        ("arrives partway through", "arrive partway through"),
        ("pops into the shot", "pop into the shot"),
    ],
    "leaves": [
        ("leaves the frame", "leave the frame"),
        ("goes out of view", "go out of view"),
        ("exits the picture", "exit the picture"),
        ("disappears before the end", "disappear before the end"),
        ("moves out of sight", "move out of sight"),
        ("is gone by the end", "are gone by the end"),
        ("heads off screen", "head off screen"),
    ],
    "approaches": [
        ("comes toward the camera", "come toward the camera"),
        ("gets closer to the camera", "get closer to the camera"),
        ("approaches us", "approach us"),
        ("moves toward me", "move toward me"),
        ("heads our way", "head our way"),
        ("draws nearer", "draw nearer"),
    ],
    "recedes": [
        ("moves away from the camera", "move away from the camera"),
        ("goes further away", "go further away"),
        ("heads away from us", "head away from us"),
        ("gets farther from the camera", "get farther from the camera"),
        ("retreats into the distance", "retreat into the distance"),
        ("shrinks into the background", "shrink into the background"),
    ],
    "moves_left": [
        ("moves to the left", "move to the left"),
        ("goes left", "go left"),
        ("travels leftward", "travel leftward"),
        ("heads to the left", "head to the left"),
        ("drifts left", "drift left"),
        ("crosses toward the left side", "cross toward the left side"),
    ],
    "moves_right": [
        ("moves to the right", "move to the right"),
        ("goes right", "go right"),
        ("travels rightward", "travel rightward"),
        ("heads to the right", "head to the right"),
        ("drifts right", "drift right"),
        ("crosses toward the right side", "cross toward the right side"),
    ],
    "moves_up": [
        ("moves up", "move up"),
        ("rises", "rise"),
        ("goes upward", "go upward"),
        ("climbs higher in the picture", "climb higher in the picture"),
        ("floats upward", "float upward"),
    ],
    "moves_down": [
        ("moves down", "move down"),
        ("drops", "drop"),
        ("goes downward", "go downward"),
        ("sinks lower in the picture", "sink lower in the picture"),
        ("slides downward", "slide downward"),
    ],
    "still": [
        ("never moves", "never move"),
        ("does not move at all", "do not move at all"),
        ("stays in one spot", "stay in one spot"),
        ("stays still", "stay still"),
        ("doesn't move", "don't move"),
        ("stays put the whole time", "stay put the whole time"),
        ("remains in place", "remain in place"),
        ("is motionless throughout", "are motionless throughout"),
    ],
    "stops": [
        ("moves and then stops", "move and then stop"),
        ("walks a bit and then stands still", "walk a bit and then stand still"),
        ("stops partway and stays there", "stop partway and stay there"),
        ("goes for a while and then waits", "go for a while and then wait"),
        ("comes to a stop", "come to a stop"),
        ("stops moving", "stop moving"),
        ("halts partway", "halt partway"),
        ("settles down after moving", "settle down after moving"),
    ],
    "keeps_moving": [
        ("is still moving at the end", "are still moving at the end"),
        ("is still on the go when the clip ends", "are still on the go when the clip ends"),
        ("keeps going until the end", "keep going until the end"),
        ("keeps moving", "keep moving"),
        ("is in motion when the video ends", "are in motion when the video ends"),
        ("hasn't stopped by the end", "haven't stopped by the end"),
    ],
}
#: verbs of motion for compositional phrases ("walks toward the camera", "rolls out of the picture")
MOTION_VERBS = [
    ("moves", "move"), ("walks", "walk"), ("runs", "run"), ("rolls", "roll"), ("drives", "drive"),
    ("heads", "head"), ("goes", "go"), ("travels", "travel"), ("wanders", "wander"), ("hurries", "hurry"),
]  # fmt: skip
#: track predicate -> direction complements a verb of :data:`MOTION_VERBS` takes
MOTION_COMPLEMENTS = {
    "approaches": ["toward the camera", "closer to us", "in our direction", "up to the camera"],
    "recedes": ["away from the camera", "away from us", "off into the distance", "further from the camera"],
    "moves_left": ["to the left", "from right to left", "leftward", "over to the left"],
    "moves_right": ["to the right", "from left to right", "rightward", "over to the right"],
    "moves_up": ["upward", "up the picture", "higher"],
    "moves_down": ["downward", "down the picture", "lower"],
    "leaves": ["out of the picture", "out of view", "off the edge of the frame", "out of the shot"],
    "enters": ["into view", "into the picture", "into the frame partway through", "into the shot late"],
}


def motion_phrase(book: Phrasebook, pred: str) -> tuple[str, str]:
    """A wording of a track predicate: a fixed phrase of :data:`MOTIONS`, or a verb + direction complement."""
    if pred in MOTION_COMPLEMENTS and book.rng.random() < 0.5:
        verb = book.pick("verb", MOTION_VERBS)
        comp = book.pick(f"dir:{pred}", MOTION_COMPLEMENTS[pred])
        return f"{verb[0]} {comp}", f"{verb[1]} {comp}"
    return book.pick(f"motion:{pred}", MOTIONS[pred])


#: track superlatives -> (3rd person singular, plural)
TRACK_SUPS: dict[str, list[tuple[str, str]]] = {
    "fastest": [
        ("moves fastest", "move fastest"),
        ("is the quickest", "are the quickest"),
        ("goes the fastest", "go the fastest"),
        ("covers the most ground", "cover the most ground"),
    ],
    "slowest": [
        ("moves slowest", "move slowest"),
        ("is the slowest", "are the slowest"),
        ("crawls along the slowest", "crawl along the slowest"),
        ("covers the least ground", "cover the least ground"),
    ],
    "appears_first": [
        ("shows up first", "show up first"),
        ("appears first", "appear first"),
        ("is seen earliest", "are seen earliest"),
        ("turns up before the others", "turn up before the others"),
    ],
    "appears_last": [
        ("shows up last", "show up last"),
        ("appears last", "appear last"),
        ("is the last to appear", "are the last to appear"),
        ("turns up after all the others", "turn up after all the others"),
    ],
}
#: how a plan's ``all`` is named in a noun phrase: (singular, plural)
GENERIC_NOUNS = [("object", "objects"), ("thing", "things"), ("item", "items"), ("one", "ones")]
#: words for people in "who" questions
WHO_NOUNS = [("person", "people"), ("one", "ones")]


def heldout_ids(bank: list) -> set[int]:
    """Indices of a bank's held-out entries: the last one, and any frame marked with a trailing ``*``."""
    held = {len(bank) - 1} if bank else set()
    for k, v in enumerate(bank):
        if isinstance(v, str) and v.endswith("*"):
            held.add(k)
    return held


@dataclass
class Phrasebook:
    """Draws wordings for one sample and records which (``used``); held-out wordings only when allowed."""

    rng: np.random.Generator
    allow_heldout: bool = False
    prefer_heldout: float = 0.0
    """With ``allow_heldout``: the chance of drawing a held-out wording from a bank that has one."""
    used: list[str] = field(default_factory=list)
    heldout_used: bool = False

    def pick(self, name: str, bank: list):
        """One entry of ``bank`` (recorded as ``name.index``); a frame's held-out ``*`` mark is removed."""
        held = heldout_ids(bank) if len(bank) > 1 else set()
        pool = [k for k in range(len(bank)) if k not in held]
        if (self.allow_heldout and held and self.rng.random() < self.prefer_heldout) or (
            self.allow_heldout and not pool
        ):
            pool = sorted(held)
        k = int(self.rng.choice(pool)) if pool else 0
        self.used.append(f"{name}.{k}")
        self.heldout_used |= k in held
        v = bank[k]
        return v[:-1] if isinstance(v, str) and v.endswith("*") else v

    @property
    def template_id(self) -> str:
        return "|".join(self.used)
