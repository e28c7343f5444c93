"""Exceptions raised by fastreasonseg.

Every error a user can cause (a bad path, a corrupt file, an invalid twin, a model that cannot be
loaded) is a :class:`FastReasonSegError`. The CLI and the server catch this one base class and turn it
into a clear message and a non-zero exit or an HTTP status, never a traceback.
"""

from __future__ import annotations


class FastReasonSegError(Exception):
    """Base class of every error caused by user input or the environment."""


class InputError(FastReasonSegError):
    """A path, file, array or argument the user gave cannot be used (missing, unreadable, corrupt)."""


class TwinValidationError(InputError):
    """A digital twin breaks the schema. ``problems`` lists every problem, each naming
    the frame, the instance id and the field."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        head = f"{where}invalid digital twin ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''})"
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        body = "\n".join(f"  - {p}" for p in shown)
        if more > 0:
            body += f"\n  ... and {more} more"
        super().__init__(f"{head}:\n{body}")


class ModelLoadError(FastReasonSegError):
    """A model (hub id or local directory) could not be loaded."""

    def __init__(self, role: str, model: str, reason: str) -> None:
        self.role = role
        self.model = model
        msg = (
            f"could not load the {role} model {model!r}: {reason}\n"
            f"  If this machine has no internet access, download the model elsewhere "
            f"(e.g. `huggingface-cli download {model} --local-dir DIR`) and pass the local directory "
            f"instead of the hub id."
        )
        super().__init__(msg)
