"""The runtime registry: kinds declared in their own module, one spec syntax, aliases, clear errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.runtimes import (
    BASE_REASONER,
    DEFAULT_REASONER,
    STUDENT_REASONER,
    Option,
    RuntimeKind,
    RuntimeRegistry,
    default_registry,
    parse_spec,
    resolve_spec,
)
from fastreasonseg.reasoning.runtimes.base import ChatPrompt

ECHO_MODULE = """
from fastreasonseg.reasoning.runtimes.base import Completion
from fastreasonseg.reasoning.runtimes.registry import Option, RuntimeKind


class EchoRuntime:
    def __init__(self, word, times=1, loud=False):
        self.name = "echo:" + word
        self.word, self.times, self.loud = word, times, loud

    def complete(self, prompt, assistant_prefix, *, stop, max_tokens, grammar=None, temperature=0.0, seed=None):
        text = " ".join([self.word.upper() if self.loud else self.word] * self.times)
        return Completion(text=text, finish_reason="stop")

    def count_tokens(self, text):
        return len(text.split())


RUNTIME = RuntimeKind(
    name="echo",
    usage="echo:WORD[?times=N]",
    build=lambda target, o: EchoRuntime(target, **o),
    target="required",
    target_help="a word",
    options={"times": Option(int, "repeats"), "loud": Option(bool, "upper case")},
    example="echo:hello",
)
"""


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A package ``frs_plugins`` holding one file that declares a runtime (and one that declares none)."""
    pkg = tmp_path / "frs_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "echo.py").write_text(textwrap.dedent(ECHO_MODULE))
    (pkg / "helpers.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "frs_plugins"
    for name in [m for m in sys.modules if m == "frs_plugins" or m.startswith("frs_plugins.")]:
        del sys.modules[name]


def test_the_builtin_runtimes_are_found_in_their_own_modules():
    reg = default_registry()
    assert reg.kinds == ("llamacpp", "openai", "transformers")
    for name in reg.kinds:
        kind = reg.kind(name)
        assert kind.usage.startswith(name) and kind.build is not None
        module = sys.modules[f"fastreasonseg.reasoning.runtimes.{name}"]
        assert module.RUNTIME is kind


def test_a_runtime_added_as_one_file_is_picked_by_its_spec(plugin_package):
    reg = RuntimeRegistry.from_packages(plugin_package)
    assert reg.kinds == ("echo",)
    assert reg.parse("echo:hi?times=3&loud=yes") == ("echo", "hi", {"times": 3, "loud": True})
    rt = reg.load("echo:hi?times=2")
    assert rt.name == "echo:hi"
    assert rt.complete(ChatPrompt("s", "u"), "", stop=[], max_tokens=4).text == "hi hi"
    with pytest.raises(InputError, match=r"echo needs a word, e.g. echo:hello"):
        reg.parse("echo")
    with pytest.raises(InputError, match=r"times='x' of echo must be a int"):
        reg.parse("echo:hi?times=x")


def test_register_adds_a_kind_beside_the_builtin_ones():
    def build(target, options):
        return ("built", target, options)

    reg = default_registry()
    reg.register(RuntimeKind("mine", "mine[:X]", build, options={"n": Option(int)}))
    assert reg.load("mine:abc?n=4") == ("built", "abc", {"n": 4})
    assert reg.load("mine") == ("built", None, {})
    with pytest.raises(ValueError, match="already registered"):
        reg.register(RuntimeKind("mine", "mine", build))
    with pytest.raises(ValueError, match="already registered"):
        reg.register(RuntimeKind("student", "student", build))  # an alias's name is taken too


def test_unknown_kind_lists_every_kind_and_alias():
    with pytest.raises(InputError) as exc:
        parse_spec("gpt5:foo")
    msg = str(exc.value)
    assert "unknown reasoner 'gpt5'" in msg
    for usage in ("llamacpp[:MODEL.gguf][?lora=ADAPTER.gguf]", "transformers[:HUB_ID_OR_DIR]", "openai:URL?model="):
        assert usage in msg
    assert "aliases student, base" in msg
    with pytest.raises(InputError, match="names no runtime"):
        parse_spec(":x")


def test_aliases_and_the_one_default():
    assert DEFAULT_REASONER == STUDENT_REASONER == "student" and BASE_REASONER == "base"
    student = resolve_spec(None)
    assert student == resolve_spec("student") == resolve_spec(" Student ")
    assert student.startswith("llamacpp?lora=") and student.endswith("student/adapter.gguf")
    assert resolve_spec("base") == "llamacpp"
    assert resolve_spec("base?threads=2") == "llamacpp?threads=2"
    assert resolve_spec("student?threads=2") == student + "&threads=2"
    assert parse_spec("student?n_ctx=512").options == {"lora": student.split("=", 1)[1], "n_ctx": 512}
    assert resolve_spec("transformers:/x") == "transformers:/x"  # not an alias: as given
    with pytest.raises(InputError, match="'lora' is given twice"):
        parse_spec("student?lora=/other.gguf")


def test_the_student_alias_says_when_its_adapter_is_missing(monkeypatch, tmp_path):
    import fastreasonseg.assets

    monkeypatch.setattr(fastreasonseg.assets, "asset_path", lambda name: tmp_path / name)
    with pytest.raises(InputError, match=r"student adapter is not installed.*--reasoner base"):
        resolve_spec("student")
    assert resolve_spec("base") == "llamacpp"
