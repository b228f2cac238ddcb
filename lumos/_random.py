"""One randomness path: every stochastic function normalises ``random_state`` here."""

from __future__ import annotations

import numbers

import numpy as np

from lumos.errors import InputError

RandomState = int | np.random.Generator | np.random.SeedSequence | None


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """Return a NumPy ``Generator`` for ``random_state`` without touching global state.

    Parameters
    ----------
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None
        ``None`` draws fresh entropy; an int or seed sequence seeds a new generator;
        a generator is returned as it is (the caller's stream advances).

    Returns
    -------
    numpy.random.Generator
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.SeedSequence):
        return np.random.default_rng(random_state)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if int(random_state) < 0:
            raise InputError(
                f"random_state must be a non-negative int, got {random_state}; "
                "pass e.g. random_state=0."
            )
        return np.random.default_rng(int(random_state))
    raise InputError(
        "random_state must be an int, a numpy Generator or None, "
        f"got {type(random_state).__name__}."
    )


def seed_to_int(random_state: RandomState) -> int | None:
    """The integer seed recorded in provenance, or ``None`` when it is not an int."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return None
