"""What every plot shares: a fresh figure with its own Agg canvas, input checks that raise
typed lumos errors, safe labels and the colours of signed values.

Figures are built with :class:`matplotlib.figure.Figure` and never registered with pyplot,
so nothing leaks between calls and nothing needs closing; the Agg canvas renders them on a
machine without a display whatever backend the user has chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lumos.errors import InputError, ShapeError
from lumos.explanation import Explanation, GlobalExplanation

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours of positive and negative contributions (red pushes the output up, blue down).
POSITIVE = "#d62728"
NEGATIVE = "#1f77b4"
NEUTRAL = "#7f7f7f"
#: Diverging colormap for signed maps (centred at 0) and sequential one for non-negative maps.
DIVERGING = "RdBu_r"
SEQUENTIAL = "inferno"
#: Half-width of a 95% normal confidence interval, in standard errors.
Z95 = 1.959963984540054
#: Longest label drawn before it is cut with an ellipsis.
LABEL_WIDTH = 32


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches on its own Agg canvas (not in pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def label(text: Any, width: int = LABEL_WIDTH) -> str:
    """``text`` as a label: at most ``width`` characters (cut with "…") and with ``$`` escaped,
    so a name never turns into (possibly invalid) mathtext."""
    s = str(text)
    if len(s) > width:
        s = s[: max(width - 1, 1)] + "…"
    return s.replace("$", r"\$")


def fmt(value: float) -> str:
    """A number in 4 significant digits."""
    return f"{value:.4g}"


def check_type(obj: Any, cls: type | tuple[type, ...], *, name: str, func: str, how: str) -> None:
    """Raise :class:`InputError` unless ``obj`` is a ``cls``; ``how`` says where one comes from."""
    if not isinstance(obj, cls):
        want = cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls)
        raise InputError(
            f"{func}() takes a lumos {want} as {name}, got {type(obj).__name__}; {how}"
        )


def check_explanation(obj: Any, *, func: str) -> Explanation:
    """``obj`` if it is a local :class:`Explanation`, else :class:`InputError`."""
    if isinstance(obj, GlobalExplanation):
        raise InputError(
            f"{func}() draws a local Explanation (one attribution per input row), got a "
            "GlobalExplanation; draw global importances with lumos.plots.importance()."
        )
    check_type(
        obj,
        Explanation,
        name="explanation",
        func=func,
        how="make one with lumos.explain(model, x, method=...) or "
        "lumos.Explanation(values=..., data=...).",
    )
    return obj


def check_global(obj: Any, *, func: str) -> GlobalExplanation:
    """``obj`` if it is a :class:`GlobalExplanation`, else :class:`InputError`."""
    if isinstance(obj, Explanation):
        raise InputError(
            f"{func}() draws a GlobalExplanation, got a local Explanation; aggregate it first "
            "with lumos.importance.aggregate(explanation), or use lumos.plots.bar() / "
            "beeswarm() for local attributions."
        )
    check_type(
        obj,
        GlobalExplanation,
        name="explanation",
        func=func,
        how="make one with lumos.surrogate.fit(...) or a lumos.importance function.",
    )
    return obj


def check_row(explanation: Explanation, row: Any, *, name: str = "row") -> int:
    """``row`` as a non-negative index into ``explanation`` (negative indices count back)."""
    n = len(explanation)
    if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)):
        raise InputError(f"{name} must be an int row index in 0..{n - 1}, got {row!r}.")
    if not -n <= row < n:
        raise InputError(
            f"{name}={row} is out of range: the explanation has {n} row(s); pass an index in "
            f"0..{n - 1} (or -{n}..-1 from the end)."
        )
    return int(row) % n


def check_count(value: Any, *, name: str) -> int:
    """``value`` as an int >= 1, else :class:`InputError`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be an int >= 1, got {value!r}; pass e.g. {name}=10.")
    return int(value)


def check_image_shape(explanation: Explanation, *, func: str) -> tuple[int, int]:
    """(H, W) of an explanation of images (rows (H, W) or (C, H, W)), else :class:`ShapeError`."""
    shape = explanation.input_shape
    if len(shape) not in (2, 3):
        raise ShapeError(
            f"{func}() draws explanations of images (rows of shape (H, W) or (C, H, W)); this "
            f"one has rows of shape {shape}. For tabular rows use lumos.plots.bar(), "
            "waterfall() or beeswarm()."
        )
    return int(shape[-2]), int(shape[-1])


def channel_map(values: np.ndarray, reduce: str) -> np.ndarray:
    """One 2-D map (H, W) from a row's values (H, W) or (C, H, W): channels summed
    (``"sum"``, signed) or their absolute values summed (``"abs"``)."""
    if reduce not in ("sum", "abs"):
        raise InputError(
            f"reduce must be 'sum' (signed, channels added) or 'abs' (magnitudes added), got "
            f"{reduce!r}."
        )
    v = np.abs(values) if reduce == "abs" else values
    return v.sum(axis=0) if v.ndim == 3 else v


def display_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image (H, W) or (H, W, C) scaled to [0, 1] for drawing (inputs are often
    standardised); returns (image, cmap), cmap "gray" for one channel. Four channels lose
    the fourth (alpha); other channel counts are drawn as their mean."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 3:
        if arr.shape[-1] == 4:
            arr = arr[..., :3]
        elif arr.shape[-1] != 3:
            arr = arr.mean(axis=-1)
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    scaled = np.clip(np.nan_to_num(scaled), 0.0, 1.0)
    return scaled, ("gray" if scaled.ndim == 2 else None)


def grayscale(image: np.ndarray) -> np.ndarray:
    """A [0, 1] image (H, W) or (H, W, 3) as (H, W): the mean of its channels (colour under a
    colour map would mix with it)."""
    return image.mean(axis=-1) if image.ndim == 3 else image


def resolve_image(explanation: Explanation, row: int, image: Any, *, func: str) -> np.ndarray:
    """The image to draw under row ``row``'s map, as (H, W) or (H, W, C): ``image`` when
    given ((H, W), (C, H, W) or (H, W, C)), else the row's data (channels first)."""
    h, w = check_image_shape(explanation, func=func)
    if image is None:
        arr = explanation.data[row]
        return np.moveaxis(arr, 0, -1) if arr.ndim == 3 else arr
    try:
        arr = np.asarray(image, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"image must be a numeric array, got {type(image).__name__}.") from None
    if arr.shape == (h, w):
        return arr
    if arr.ndim == 3 and arr.shape[1:] == (h, w) and arr.shape[0] in (1, 3, 4):
        return np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[:2] == (h, w) and arr.shape[2] in (1, 3, 4):
        return arr
    raise ShapeError(
        f"image has shape {arr.shape} but the explanation's maps are {h}×{w}; pass an "
        f"image of shape ({h}, {w}), (C, {h}, {w}) or ({h}, {w}, C) with C in 1, 3, 4 "
        "(or leave image=None to draw the explained input)."
    )


def signed_norm(values: np.ndarray) -> tuple[str, float, float]:
    """(cmap, vmin, vmax) for a map: diverging and symmetric around 0 (``vmin == -vmax``)
    when it has negative values, sequential from 0 otherwise."""
    finite = values[np.isfinite(values)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    if top == 0.0:
        top = 1.0  # an all-zero map: any non-empty range
    if finite.size and finite.min() < 0:
        return DIVERGING, -top, top
    return SEQUENTIAL, 0.0, top


def row_title(explanation: Explanation, row: int) -> str:
    """``method · class · f(x) = ...`` for row ``row``."""
    parts = [label(explanation.method, 40)]
    t = int(explanation.target[row])
    names = explanation.class_names
    parts.append(
        label(names[t], 24) if names is not None and 0 <= t < len(names) else f"output {t}"
    )
    if explanation.prediction is not None:
        parts.append(f"f(x) = {fmt(float(explanation.prediction[row]))}")
    return "  ·  ".join(parts)


def hide_frame(ax: Axes) -> None:
    """No ticks or spines (for images)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
