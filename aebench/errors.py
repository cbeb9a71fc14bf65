"""User-facing errors.

Every error a user can cause derives from :class:`AebenchError`. The CLI prints
``str(error)`` as one line and exits with ``error.exit_code`` (2 for bad input),
without a traceback unless ``--verbose`` is given.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AebenchError(Exception):
    """Base class for errors that are the user's to fix; printed as one line."""

    exit_code = 2


class UnknownNameError(AebenchError, KeyError):
    """A model, dataset, family or option value that is not registered."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.choices = sorted(set(choices))
        self.suggestion = suggest(name, self.choices)
        msg = f"unknown {kind} {name!r}{did_you_mean(name, self.choices)}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class DuplicateNameError(AebenchError):
    """Two plugins registered the same name."""


class PluginError(AebenchError):
    """A plugin is malformed (e.g. a misspelled hook implementation)."""


class DataError(AebenchError):
    """Dataset files are missing, corrupt or unreadable."""


class ConfigError(AebenchError, ValueError):
    """An option or configuration value is invalid."""


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """Return the closest of ``choices`` to ``name``, or None if nothing is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean beta?)"`` when one of ``choices`` is close to ``name``, else
    ``""``: the one way every error message suggests a name."""
    close = suggest(name, choices)
    return f" (did you mean {close}?)" if close else ""
