"""Exception hierarchy: catch `openended.errors.Error` to catch everything openended raises on purpose.

Each error says what was wrong and how to fix it; the message is the user interface.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "ConfigError",
    "UnknownName",
    "TaskNotInSpace",
    "InvalidArgument",
    "InvalidOutcome",
    "TeacherStateError",
    "DependencyNotInstalled",
    "ServiceError",
    "RunDirError",
    "RunFailed",
    "LogFormatError",
]


class Error(Exception):
    """Root of every error openended raises deliberately."""


class ConfigError(Error, ValueError):
    """A configuration value is invalid; the message names the dotted field path and the fix."""


class UnknownName(Error, KeyError):
    """A registry lookup failed; the message lists the registered names and a close match."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class TaskNotInSpace(Error, ValueError):
    """A task's parameters or text do not belong to the task space they were given for."""


class InvalidArgument(Error, TypeError, ValueError):
    """A public function got an argument it cannot use (wrong type, NaN or infinite, out of range).

    The message names the argument. Both a `TypeError` and a `ValueError`, so code that
    caught either before keeps working.
    """


class InvalidOutcome(InvalidArgument, TaskNotInSpace):
    """An `Outcome` field is invalid (a NaN or infinite return, a non-numeric return, ...)."""


class TeacherStateError(Error, ValueError):
    """A teacher state dict does not match the teacher it is loaded into."""


class DependencyNotInstalled(Error, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class ServiceError(Error, RuntimeError):
    """The teacher service cannot do what was asked (unknown curriculum, mismatched log, ...)."""


class RunDirError(Error, RuntimeError):
    """A run directory cannot be used as asked: held by a live run, damaged, or a path outside it.

    The message names the file (and line) or the holder, and what to do.
    """


class RunFailed(Error, RuntimeError):
    """A run stopped on an error from outside it (disk full, permission denied, an actor that stayed dead).

    The message is the original error in one line; ``status.json`` records it as the reason.
    """


class LogFormatError(Error, ValueError):
    """A lifelong log (l2logger format) is malformed: the message names the file, the row and the field."""
