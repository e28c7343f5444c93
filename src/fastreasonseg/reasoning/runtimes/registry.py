"""The runtime registry: one spec syntax for every reasoner, and one place that turns a spec into a runtime.

A reasoner spec is ``KIND[:TARGET][?key=value&...]``: the kind names a runtime, the target is what it runs (a GGUF
file, a hub id or directory, a URL; paths may contain ``:``, only the first one separates the kind), the options are
``key=value`` pairs joined by ``&``, checked and typed by the kind. Two aliases stand for the shipped models:

* ``student`` (the default, :data:`DEFAULT_REASONER`): SmolLM2-135M on llama.cpp with the student LoRA adapter
  shipped in ``fastreasonseg/assets/student``;
* ``base``: the same model zero-shot (``llamacpp``).

An alias takes options too (``student?threads=2`` is ``llamacpp?lora=<the student adapter>&threads=2``).

Each runtime declares itself in its own module as a module-level ``RUNTIME = RuntimeKind(...)``: its kind, its
options and a ``build(target, options)`` function. :func:`default_registry` collects the declarations of every
module of this package, so adding a runtime is adding one file here; :meth:`RuntimeRegistry.register` adds one from
anywhere else (a plugin, a test).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl

from fastreasonseg.errors import InputError

STUDENT_REASONER = "student"
"""Alias: SmolLM2-135M on llama.cpp with the student LoRA adapter shipped with the package."""
BASE_REASONER = "base"
"""Alias: SmolLM2-135M on llama.cpp without an adapter (zero-shot): faster per query, less accurate."""
DEFAULT_REASONER = STUDENT_REASONER
"""The reasoner every command, :class:`~fastreasonseg.FastReasonSeg` and :func:`load_runtime` use by default."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Option:
    """One ``key=value`` option of a runtime kind."""

    type: type
    """``str``, ``int``, ``float`` or ``bool`` (``1/0``, ``true/false``, ``yes/no``, ``on/off``)."""
    help: str = ""
    required: bool = False
    metavar: str = "VALUE"

    def convert(self, kind: str, key: str, value: str) -> Any:
        try:
            if self.type is bool:
                low = value.lower()
                if low in _TRUE or low in _FALSE:
                    return low in _TRUE
                raise ValueError(value)
            return self.type(value)
        except ValueError:
            raise InputError(
                f"reasoner spec: option {key}={value!r} of {kind} must be a {self.type.__name__}"
            ) from None


@dataclass(frozen=True)
class RuntimeKind:
    """What a runtime module declares (as its module-level ``RUNTIME``): how specs of its kind read and build."""

    name: str
    """The kind, the spec's first word (``llamacpp``)."""
    usage: str
    """The spec's shape for messages and help (``llamacpp[:MODEL.gguf][?lora=ADAPTER.gguf]``)."""
    build: Callable[[str | None, dict[str, Any]], Any]
    """``build(target, options)``: the runtime; ``options`` are already checked and typed."""
    options: Mapping[str, Option] = field(default_factory=dict)
    target: Literal["optional", "required"] = "optional"
    target_help: str = "a target"
    """What the target is, for the message when a required one is missing (``a URL``)."""
    example: str = ""


class ReasonerSpec(NamedTuple):
    """A parsed spec (a tuple, so ``kind, target, options = parse_spec(...)`` works)."""

    kind: str
    target: str | None
    options: dict[str, Any]


def student_spec() -> str:
    """The spec the ``student`` alias stands for (an error naming the file when the adapter is not installed)."""
    from fastreasonseg.assets import asset_path

    adapter = asset_path("student/adapter.gguf")
    if not adapter.is_file():
        raise InputError(
            f"the student adapter is not installed with this package ({adapter} is missing); "
            f"reinstall fastreasonseg or use --reasoner {BASE_REASONER} (the same model without the adapter)"
        )
    return f"llamacpp?lora={adapter}"


def default_aliases() -> dict[str, Callable[[], str]]:
    """``student`` and ``base`` (see the module docstring)."""
    return {STUDENT_REASONER: student_spec, BASE_REASONER: lambda: "llamacpp"}


class RuntimeRegistry:
    """Runtime kinds by name, plus aliases; parses specs and builds runtimes."""

    def __init__(
        self, kinds: Iterable[RuntimeKind] = (), aliases: Mapping[str, Callable[[], str]] | None = None
    ) -> None:
        self._kinds: dict[str, RuntimeKind] = {}
        self.aliases: dict[str, Callable[[], str]] = dict(default_aliases() if aliases is None else aliases)
        for k in kinds:
            self.register(k)

    @classmethod
    def from_packages(cls, *packages: str | ModuleType) -> RuntimeRegistry:
        """A registry of the ``RUNTIME`` declarations found in the modules of ``packages`` (in module-name order)."""
        reg = cls()
        for pkg in packages:
            mod = importlib.import_module(pkg) if isinstance(pkg, str) else pkg
            for info in sorted(pkgutil.iter_modules(getattr(mod, "__path__", [])), key=lambda m: m.name):
                sub = importlib.import_module(f"{mod.__name__}.{info.name}")
                kind = getattr(sub, "RUNTIME", None)
                if isinstance(kind, RuntimeKind):
                    reg.register(kind)
        return reg

    # ------------------------------------------------------------------ contents
    def register(self, kind: RuntimeKind) -> None:
        name = kind.name.strip().lower()
        if not name or not name.isidentifier():
            raise ValueError(f"a runtime kind needs a plain name, got {kind.name!r}")
        if name in self._kinds or name in self.aliases:
            raise ValueError(f"runtime kind {name!r} is already registered")
        self._kinds[name] = kind

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def kind(self, name: str) -> RuntimeKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise InputError(f"unknown reasoner {name!r}; {self.expected()}") from None

    def expected(self) -> str:
        """``expected one of: <usages>, or the aliases ...`` (for messages)."""
        usages = "; ".join(k.usage for k in self._kinds.values()) or "(no runtime is registered)"
        aliases = f", or the aliases {', '.join(self.aliases)}" if self.aliases else ""
        return f"expected one of: {usages}{aliases}"

    # ------------------------------------------------------------------ specs
    def resolve(self, spec: str | None) -> str:
        """``spec`` with an alias (``student``, ``base``, the default for ``None``) expanded; others as given."""
        if spec is None:
            spec = DEFAULT_REASONER
        if not isinstance(spec, str):
            raise InputError(f"a reasoner spec must be text, got {type(spec).__name__}")
        head, sep, query = spec.strip().partition("?")
        expand = self.aliases.get(head.strip().lower())
        if expand is None:
            return spec
        full = expand()
        return f"{full}{'&' if '?' in full else '?'}{query}" if sep and query else full

    def parse(self, spec: str | None) -> ReasonerSpec:
        """``"kind[:target][?k=v&...]"`` (or an alias) → :class:`ReasonerSpec`, options checked and typed."""
        if spec is not None and (not isinstance(spec, str) or not spec.strip()):
            raise InputError(f"empty reasoner spec; {self.expected()}")
        spec = self.resolve(spec).strip()
        head, _, query = spec.partition("?")
        name, sep, target = head.partition(":")
        kind = self.kind(name.strip().lower()) if name.strip() else None
        if kind is None:
            raise InputError(f"reasoner spec {spec!r} names no runtime; {self.expected()}")
        target = target.strip() or None
        if sep and target is None:
            raise InputError(f"reasoner spec {spec!r}: nothing after '{kind.name}:'")
        if target is None and kind.target == "required":
            raise InputError(f"reasoner spec {spec!r}: {kind.name} needs {kind.target_help}, e.g. {kind.example}")
        options = _parse_options(spec, kind, query)
        for key, opt in kind.options.items():
            if opt.required and key not in options:
                what = f" ({opt.help})" if opt.help else ""
                raise InputError(f"reasoner spec {spec!r}: {kind.name} needs ?{key}={opt.metavar}{what}")
        return ReasonerSpec(kind.name, target, options)

    def load(self, spec: str | None = None) -> Any:
        """The runtime ``spec`` names (default: :data:`DEFAULT_REASONER`)."""
        kind, target, options = self.parse(spec)
        return self._kinds[kind].build(target, options)


def _parse_options(spec: str, kind: RuntimeKind, query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if not query:
        return options
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InputError(f"reasoner spec {spec!r}: options must be key=value pairs joined by '&'") from None
    for key, value in pairs:
        opt = kind.options.get(key)
        if opt is None:
            known = ", ".join(sorted(kind.options)) or "none"
            raise InputError(f"reasoner spec {spec!r}: unknown option {key!r} for {kind.name} (known: {known})")
        if key in options:
            raise InputError(f"reasoner spec {spec!r}: option {key!r} is given twice")
        options[key] = opt.convert(kind.name, key, value)
    return options


def default_registry() -> RuntimeRegistry:
    """The runtimes of this package (every module of :mod:`fastreasonseg.reasoning.runtimes` declaring ``RUNTIME``)
    and the ``student`` / ``base`` aliases."""
    return RuntimeRegistry.from_packages(__package__ or "fastreasonseg.reasoning.runtimes")


def parse_spec(spec: str | None, *, registry: RuntimeRegistry | None = None) -> ReasonerSpec:
    """Parse a reasoner spec (see the module docstring) with the default registry unless one is given."""
    return (registry or default_registry()).parse(spec)


def resolve_spec(spec: str | None, *, registry: RuntimeRegistry | None = None) -> str:
    """Expand an alias (``None`` = :data:`DEFAULT_REASONER`); any other spec is returned as given."""
    return (registry or default_registry()).resolve(spec)


def load_runtime(spec: str | None = DEFAULT_REASONER, *, registry: RuntimeRegistry | None = None) -> Any:
    """Build the runtime a reasoner spec names (default: the student, :data:`DEFAULT_REASONER`)."""
    return (registry or default_registry()).load(spec)
