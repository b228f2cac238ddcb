"""Typed errors raised by lumos.

Every error a user can trigger derives from :class:`LumosError` and its message says what was
wrong and how to fix it. The subclasses also derive from the matching built-in exception
(``ValueError``, ``TypeError``, ...) so code that already catches those keeps working.
"""

from __future__ import annotations

__all__ = [
    "EmptyInputError",
    "InputError",
    "LumosError",
    "ModelError",
    "NonFiniteError",
    "NonNumericError",
    "NotDifferentiableError",
    "ShapeError",
    "TargetError",
    "UnknownNameError",
    "UnsafeModelError",
]


class LumosError(Exception):
    """Base class of every error lumos raises on purpose."""


class InputError(LumosError, ValueError):
    """The data passed in cannot be used as it is."""


class ShapeError(InputError):
    """An array has the wrong number of dimensions or the wrong feature shape."""


class NonFiniteError(InputError):
    """An array contains NaN or infinite values."""


class NonNumericError(InputError, TypeError):
    """An array or column holds strings, objects or other non-numeric values."""


class EmptyInputError(InputError):
    """An array has no rows or no features."""


class TargetError(InputError, IndexError):
    """A target (output index or class name) does not exist for this model."""


class UnknownNameError(LumosError, ValueError):
    """A method, metric, dataset or option name is not known."""


class ModelError(LumosError, TypeError):
    """An object or file cannot be used as a model."""


class NotDifferentiableError(ModelError):
    """A gradient-based method was asked of a black-box model."""


class UnsafeModelError(LumosError, PermissionError):
    """Loading this model file could execute code from it; refused unless ``trust=True``."""
