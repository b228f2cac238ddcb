"""One training helper, :func:`fit`, for Keras models and torch modules alike.

Training is reproducible from ``seed`` and leaves the global random state (Python ``random``,
NumPy's legacy global generator, torch's CPU/CUDA generators, Keras' global seed) as it was.
"""

from __future__ import annotations

import copy
import math
import numbers
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# ``lumos/__init__.py`` has already run (this module lives in the package), so
# KERAS_BACKEND=torch is set before keras is imported here.
import keras
import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from torch import nn

from lumos._validation import check_array
from lumos.errors import (
    InputError,
    ModelError,
    NonFiniteError,
    NonNumericError,
    ShapeError,
    TargetError,
)
from lumos.zoo.torch_nets import _penalty, _positive_int

__all__ = ["fit"]

_ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy")


# --------------------------------------------------------------------------- input checks


def _check_x(x: object) -> np.ndarray:
    arr, _ = check_array(x, name="x")
    return arr.astype(np.float32, copy=False)


def _check_y(y: object, n: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        hint = " (one-hot? use y.argmax(axis=1))" if arr.ndim == 2 else ""
        raise ShapeError(
            f"y must be a 1-D array of integer class labels, got shape {arr.shape}{hint}."
        )
    if arr.shape[0] != n:
        raise ShapeError(f"x has {n} rows but y has {arr.shape[0]}; pass one label per row of x.")
    if arr.dtype.kind not in "biuf":
        raise NonNumericError(
            f"y must hold integer class labels 0..n_classes-1, got dtype {arr.dtype}; "
            "encode names with e.g. sklearn.preprocessing.LabelEncoder."
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise NonFiniteError("y contains NaN or infinite values; drop those rows.")
        if not np.array_equal(arr, np.round(arr)):
            raise InputError(
                "y must hold integer class labels 0..n_classes-1 (fit trains classifiers), "
                "but it has non-integer values; for regression targets use another trainer."
            )
    labels = arr.astype(np.int64)
    if labels.min() < 0:
        raise TargetError(
            f"y has negative labels (min {labels.min()}); labels must be 0..n_classes-1."
        )
    return labels


def _check_options(
    epochs: object,
    batch_size: object,
    validation_split: object,
    patience: object,
    learning_rate: object,
    seed: object,
) -> tuple[int, int, float, int, float | None, int]:
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    patience = _positive_int(patience, "patience", minimum=0)
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
        raise InputError(f"validation_split must be a float in [0, 1), got {validation_split!r}.")
    validation_split = float(validation_split)
    if not 0.0 <= validation_split < 1.0:
        raise InputError(
            f"validation_split must be in [0, 1) (e.g. 0.1; 0 trains on everything), "
            f"got {validation_split}."
        )
    if learning_rate is not None:
        learning_rate = _penalty(learning_rate, "learning_rate")
        if learning_rate == 0.0:
            raise InputError("learning_rate must be > 0, e.g. 1e-3.")
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    else:
        seed = _positive_int(seed, "seed", minimum=0)
        if seed >= 2**32:
            raise InputError(f"seed must be below 2**32, got {seed}.")
    return epochs, batch_size, validation_split, patience, learning_rate, seed


def _split(n: int, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle split into (train_idx, val_idx)."""
    if validation_split == 0.0:
        return np.arange(n), np.arange(0)
    n_val = max(1, round(n * validation_split))
    if n - n_val < 1:
        raise InputError(
            f"validation_split={validation_split} leaves no training rows out of {n}; "
            "pass more rows or a smaller validation_split (0 to skip validation)."
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# --------------------------------------------------------------------------- progress bar


class _Bar:
    """An epoch-level ``rich.progress`` bar on stderr; a no-op when disabled."""

    def __init__(self, enabled: bool, epochs: int, label: str) -> None:
        self.progress: Progress | None = None
        self.task: Any = None
        if not enabled:
            return
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=Console(stderr=True),
        )
        try:
            progress.start()
        except LiveError:  # another live display is running (e.g. an outer bar): stay quiet
            return
        self.progress = progress
        self.task = progress.add_task(label, total=epochs, metrics="")

    def epoch_end(self, logs: dict[str, float]) -> None:
        if self.progress is None:
            return
        shown = []
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if logs.get(key) is not None:
                shown.append(f"{key.replace('accuracy', 'acc')} {logs[key]:.3f}")
        self.progress.update(self.task, advance=1, metrics="  ".join(shown))

    def close(self, epochs_run: int, epochs: int) -> None:
        if self.progress is None:
            return
        if epochs_run < epochs:  # stopped early (or failed): say so next to the bar
            self.progress.update(self.task, description="stopped")
        self.progress.stop()
        self.progress = None


class _KerasProgress(keras.callbacks.Callback):
    """Keras callback forwarding each epoch's logs to a :class:`_Bar`."""

    def __init__(self, bar: _Bar) -> None:
        super().__init__()
        self.bar = bar

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        for key in _ACCURACY_KEYS:
            if key in logs:
                logs.setdefault("accuracy", logs[key])
            if f"val_{key}" in logs:
                logs.setdefault("val_accuracy", logs[f"val_{key}"])
        self.bar.epoch_end({k: float(v) for k, v in logs.items() if np.ndim(v) == 0})


# --------------------------------------------------------------------------- global RNG state


@contextmanager
def _preserve_global_rng() -> Iterator[None]:
    """Restore Python, NumPy, torch (CPU and CUDA) and Keras global random state on exit."""
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002  (saving the legacy global on purpose)
    keras_seed = global_state.get_global_attribute(GLOBAL_RANDOM_SEED)
    keras_gen = global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        global_state.set_global_attribute(GLOBAL_RANDOM_SEED, keras_seed)
        global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, keras_gen)


# --------------------------------------------------------------------------- keras


def _n_outputs_keras(model: keras.Model, x: np.ndarray) -> int:
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ModelError(
            "The Keras model is not compiled; call model.compile(optimizer='adam', "
            "loss='sparse_categorical_crossentropy', metrics=['accuracy']) first "
            "(lumos.zoo.keras_mlp / keras_cnn return compiled models)."
        )
    try:
        out = keras.ops.convert_to_numpy(model(x[:2], training=False))
    except Exception as exc:
        raise ShapeError(
            f"The Keras model cannot run on x of shape {x.shape}: {exc}. Pass x shaped "
            "(n_samples, *input_shape) matching the model's input."
        ) from exc
    return _n_outputs_from(out)


def _fit_keras(
    model: keras.Model,
    data: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    *,
    epochs: int,
    batch_size: int,
    early_stopping: bool,
    patience: int,
    learning_rate: float | None,
    seed: int,
    bar: _Bar,
) -> dict[str, Any]:
    x_tr, y_tr, x_val, y_val = data
    has_val = x_val is not None
    if learning_rate is not None:
        try:
            model.optimizer.learning_rate = learning_rate
        except TypeError as exc:
            raise InputError(
                "This Keras optimizer uses a learning-rate schedule, so fit cannot set "
                "learning_rate; pass learning_rate=None to keep the schedule."
            ) from exc
    callbacks: list[keras.callbacks.Callback] = []
    if early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss" if has_val else "loss",
                patience=patience,
                restore_best_weights=True,
            )
        )
    callbacks.append(_KerasProgress(bar))
    with _preserve_global_rng():
        keras.utils.set_random_seed(seed)
        hist = model.fit(
            x_tr,
            y_tr,
            validation_data=(x_val, y_val) if has_val else None,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        ).history

    def series(*keys: str) -> list[float]:
        for key in keys:
            if key in hist:
                return [float(v) for v in hist[key]]
        return []

    return {
        "loss": series("loss"),
        "val_loss": series("val_loss"),
        "accuracy": series(*_ACCURACY_KEYS),
        "val_accuracy": series(*(f"val_{k}" for k in _ACCURACY_KEYS)),
    }


# --------------------------------------------------------------------------- torch


def _n_outputs_from(out: np.ndarray) -> int:
    if out.ndim != 2 or out.shape[1] < 2:
        raise ModelError(
            f"fit trains classifiers whose output has shape (n, n_classes >= 2); this model "
            f"returns shape {tuple(out.shape)}."
        )
    return int(out.shape[1])


def _torch_param(model: nn.Module) -> torch.Tensor:
    try:
        return next(p for p in model.parameters() if p.requires_grad)
    except StopIteration:
        raise ModelError(
            "The torch module has no trainable parameters, so there is nothing to fit."
        ) from None


def _last_softmax(model: nn.Module) -> nn.Softmax | None:
    last = None
    for m in model.modules():
        if isinstance(m, nn.Softmax):
            last = m
    return last


_LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _loss_function(
    model: nn.Module, x_probe: torch.Tensor
) -> tuple[_LossFn, int, Callable[[], None]]:
    """Build ``loss(xb, yb) -> (mean cross-entropy, outputs)``, the class count and a cleanup.

    When the module ends with ``nn.Softmax`` the loss is taken on that layer's input (the
    logits) through a forward hook, which is exact and stable; when its outputs otherwise
    look like probabilities the loss is ``NLL(log(clamp(p, 1e-12)))``; else outputs are
    treated as logits.
    """
    softmax = _last_softmax(model)
    seen: dict[str, torch.Tensor] = {}
    hook = None
    if softmax is not None and softmax.dim in (1, -1):

        def _capture(_m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            seen["logits"], seen["out"] = inputs[0], out

        hook = softmax.register_forward_hook(_capture)

    model.eval()
    with torch.no_grad():
        try:
            probe = model(x_probe)
        except Exception as exc:
            if hook is not None:
                hook.remove()
            raise ShapeError(
                f"The torch module cannot run on x of shape {tuple(x_probe.shape)}: {exc}. "
                "Pass x shaped (n_samples, *input_shape) matching the module."
            ) from exc
    if not isinstance(probe, torch.Tensor):
        if hook is not None:
            hook.remove()
        raise ModelError(
            f"The torch module returns {type(probe).__name__}, not a tensor of class scores."
        )
    n_out = _n_outputs_from(probe.detach().cpu().numpy())
    ends_with_softmax = seen.get("out") is probe
    if not ends_with_softmax and hook is not None:
        hook.remove()
        hook = None
    looks_like_probs = bool(
        (probe >= 0).all() and torch.allclose(probe.sum(dim=1), torch.ones(()), atol=1e-4)
    )

    def loss(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.clear()
        out = model(xb)
        if ends_with_softmax and seen.get("out") is out:
            return F.cross_entropy(seen["logits"], yb), out
        if looks_like_probs:
            return F.nll_loss(torch.log(out.clamp_min(1e-12)), yb), out
        return F.cross_entropy(out, yb), out

    def cleanup() -> None:
        if hook is not None:
            hook.remove()

    return loss, n_out, cleanup


def _weight_penalty(model: nn.Module) -> Callable[[], torch.Tensor | float]:
    l1 = getattr(model, "l1", 0.0) or 0.0
    l2 = getattr(model, "l2", 0.0) or 0.0
    try:
        l1, l2 = _penalty(l1, "model.l1"), _penalty(l2, "model.l2")
    except InputError as exc:
        raise ModelError(str(exc)) from None
    weights = [
        m.weight
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
    ]
    if (l1 == 0.0 and l2 == 0.0) or not weights:
        return lambda: 0.0

    def penalty() -> torch.Tensor:
        total = weights[0].new_zeros(())
        for w in weights:
            if l1:
                total = total + l1 * w.abs().sum()
            if l2:
                total = total + l2 * w.square().sum()
        return total

    return penalty


def _fit_torch(
    model: nn.Module,
    data: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    loss_fn: _LossFn,
    *,
    epochs: int,
    batch_size: int,
    early_stopping: bool,
    patience: int,
    learning_rate: float | None,
    seed: int,
    bar: _Bar,
) -> tuple[dict[str, Any], int]:
    param = _torch_param(model)
    device, dtype = param.device, param.dtype
    x_tr, y_tr, x_val, y_val = (
        None if a is None else torch.as_tensor(a, device=device) for a in data
    )
    x_tr = x_tr.to(dtype)  # type: ignore[union-attr]
    if x_val is not None:
        x_val = x_val.to(dtype)
    has_val = x_val is not None
    penalty = _weight_penalty(model)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=1e-3 if learning_rate is None else learning_rate,
    )
    shuffler = torch.Generator().manual_seed(seed)
    n_tr = x_tr.shape[0]  # type: ignore[union-attr]
    hist: dict[str, list[float]] = {"loss": [], "val_loss": [], "accuracy": [], "val_accuracy": []}
    best, best_epoch, best_state, wait = math.inf, 0, None, 0
    devices = [device.index or 0] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=devices):  # dropout etc. draw from a seeded, private RNG
        torch.manual_seed(seed)
        for epoch in range(epochs):
            model.train()
            total, correct = 0.0, 0
            for idx in torch.randperm(n_tr, generator=shuffler).split(batch_size):
                idx = idx.to(device)
                xb, yb = x_tr[idx], y_tr[idx]  # type: ignore[index]
                optimizer.zero_grad(set_to_none=True)
                data_loss, out = loss_fn(xb, yb)
                loss = data_loss + penalty()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                correct += int((out.detach().argmax(dim=1) == yb).sum())
            hist["loss"].append(total / n_tr)
            hist["accuracy"].append(correct / n_tr)
            if has_val:
                val_loss, val_acc = _evaluate_torch(model, loss_fn, penalty, x_val, y_val)
                hist["val_loss"].append(val_loss)
                hist["val_accuracy"].append(val_acc)
            bar.epoch_end({k: v[-1] for k, v in hist.items() if v})

            current = hist["val_loss" if has_val else "loss"][-1]
            if current < best:
                best, best_epoch, wait = current, epoch, 0
                if early_stopping:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                wait += 1
                if early_stopping and wait >= patience:
                    break
    if early_stopping and best_state is not None:
        model.load_state_dict(best_state)
    optimizer.zero_grad(set_to_none=True)  # leave no training gradients on the parameters
    return hist, best_epoch


def _evaluate_torch(
    model: nn.Module,
    loss_fn: _LossFn,
    penalty: Callable[[], torch.Tensor | float],
    x: torch.Tensor,
    y: torch.Tensor,
    chunk: int = 1024,
) -> tuple[float, float]:
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            data_loss, out = loss_fn(xb, yb)
            total += float(data_loss) * xb.shape[0]
            correct += int((out.argmax(dim=1) == yb).sum())
        reg = float(penalty())
    return total / x.shape[0] + reg, correct / x.shape[0]


# --------------------------------------------------------------------------- fit


def fit(
    model: keras.Model | nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 20,
    batch_size: int = 32,
    validation_split: float = 0.1,
    early_stopping: bool = True,
    patience: int = 5,
    learning_rate: float | None = 1e-3,
    seed: int | None = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a Keras classifier or a torch classifier on ``(x, y)``, reproducibly.

    A seeded ``validation_split`` fraction of the rows is held out for validation (the same
    rows for Keras and torch with the same seed). Keras models go through ``model.fit``
    (``verbose=0``) with ``keras.callbacks.EarlyStopping(restore_best_weights=True)``, under
    ``keras.utils.set_random_seed(seed)``; the global Python, NumPy, torch and Keras random
    states are saved before and restored after. Torch modules are trained with Adam on the
    cross-entropy of their logits (a final ``nn.Softmax`` is looked through), plus
    ``l1·Σ|W| + l2·ΣW²`` over Linear/Conv weights when the module has ``l1``/``l2``
    attributes (as :func:`lumos.zoo.torch_mlp` / :func:`lumos.zoo.torch_cnn` set); batches
    are shuffled with a private ``torch.Generator`` and any other randomness (dropout) draws
    from a forked, seeded torch RNG, so the global state is untouched.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
        A compiled Keras classifier, or a torch module mapping (n, *input_shape) to
        (n, n_classes) logits or probabilities. Trained in place.
    x : ndarray of shape (n_samples, *input_shape)
        Float inputs (cast to float32; must be finite).
    y : ndarray of shape (n_samples,)
        Integer class labels ``0 .. n_classes - 1``.
    epochs : int, default 20
        Maximum number of passes over the training rows.
    batch_size : int, default 32
    validation_split : float in [0, 1), default 0.1
        Fraction of rows held out: the validation rows are
        ``np.random.default_rng(seed).permutation(n)[:max(1, round(n * validation_split))]``.
        ``0`` trains on all rows; early stopping then watches the training loss.
    early_stopping : bool, default True
        Stop after ``patience`` epochs without a lower validation loss and restore the
        weights of the best epoch.
    patience : int, default 5
    learning_rate : float or None, default 1e-3
        Adam's learning rate. For Keras it is assigned to the compiled optimizer; ``None``
        keeps the optimizer's own (and uses 1e-3 for torch).
    seed : int or None, default 0
        Seeds the split, the shuffling and the framework RNGs; the same seed gives the same
        weights (torch: bit for bit; Keras on CPU: to float rounding). ``None`` draws one.
    progress : bool, default True
        Show an epoch-level ``rich`` progress bar on stderr with the latest metrics.

    Returns
    -------
    dict
        ``"loss"``, ``"val_loss"``, ``"accuracy"``, ``"val_accuracy"``: per-epoch lists of
        float (the ``val_`` lists are empty without validation; losses include the weight
        penalty); ``"epochs_run"``: int; ``"best_epoch"``: 0-based index into those lists of
        the epoch with the lowest validation loss (training loss without validation) — the
        weights the model holds when ``early_stopping`` is on.

    Raises
    ------
    ModelError
        ``model`` is neither a Keras model nor a torch module, is an uncompiled Keras model,
        has no trainable parameters, or does not output (n, n_classes) scores.
    ShapeError, EmptyInputError, NonFiniteError, NonNumericError, TargetError, InputError
        ``x``/``y`` are unusable: lengths differ, empty, NaN/inf, non-numeric, labels not
        integers in ``0 .. n_classes - 1``, or an option out of range.
    """
    if isinstance(model, keras.Model):
        framework = "keras"
    elif isinstance(model, nn.Module):
        framework = "torch"
    else:
        raise ModelError(
            f"fit trains a keras.Model or a torch.nn.Module, got {type(model).__name__}; "
            "build one with lumos.zoo.keras_mlp / torch_mlp, for example."
        )
    epochs, batch_size, validation_split, patience, learning_rate, seed = _check_options(
        epochs, batch_size, validation_split, patience, learning_rate, seed
    )
    x_arr = _check_x(x)
    y_arr = _check_y(y, x_arr.shape[0])
    train_idx, val_idx = _split(x_arr.shape[0], validation_split, seed)
    data = (
        x_arr[train_idx],
        y_arr[train_idx],
        x_arr[val_idx] if len(val_idx) else None,
        y_arr[val_idx] if len(val_idx) else None,
    )
    options = {
        "epochs": epochs,
        "batch_size": batch_size,
        "early_stopping": bool(early_stopping),
        "patience": patience,
        "learning_rate": learning_rate,
        "seed": seed,
    }

    if framework == "keras":
        n_classes = _n_outputs_keras(model, x_arr)  # type: ignore[arg-type]
        loss_fn, cleanup = None, lambda: None
    else:
        param = _torch_param(model)  # type: ignore[arg-type]
        probe = torch.as_tensor(x_arr[:2], device=param.device, dtype=param.dtype)
        loss_fn, n_classes, cleanup = _loss_function(model, probe)  # type: ignore[arg-type]
    if y_arr.max() >= n_classes:
        cleanup()
        raise TargetError(
            f"y has label {int(y_arr.max())} but the model outputs {n_classes} classes; "
            f"labels must be 0..{n_classes - 1}. Build the model with n_classes="
            f"{int(y_arr.max()) + 1} or relabel y."
        )

    bar = _Bar(bool(progress), epochs, "epoch")
    epochs_run = 0
    try:
        if framework == "keras":
            hist = _fit_keras(model, data, bar=bar, **options)  # type: ignore[arg-type]
            monitored = np.asarray(hist["val_loss"] or hist["loss"], dtype=float)
            finite = np.isfinite(monitored)
            best_epoch = int(np.argmin(np.where(finite, monitored, np.inf))) if finite.any() else 0
        else:
            hist, best_epoch = _fit_torch(model, data, loss_fn, bar=bar, **options)  # type: ignore[arg-type]
        epochs_run = len(hist["loss"])
    finally:
        bar.close(epochs_run, epochs)
        cleanup()
        if framework == "torch":
            model.eval()
    return {**hist, "epochs_run": epochs_run, "best_epoch": best_epoch}
