"""Load a model file safely: nothing in the file is executed unless ``trust=True``."""

from __future__ import annotations

import os
import zipfile
from typing import Any

from lumos.errors import ModelError, UnsafeModelError
from lumos.models.base import Model, wrap

_PICKLE_EXTS = (".pkl", ".pickle", ".joblib", ".sav")
_TORCH_EXTS = (".pt", ".pth", ".ts", ".torchscript")


def load_model(path: str | os.PathLike[str], *, trust: bool = False, **hints: Any) -> Model:
    """Load a model file and wrap it as a :class:`Model`.

    Supported files, all loaded without running code from the file by default:

    * ``.keras`` — Keras 3 archive, loaded with ``safe_mode=True`` (no lambda layers).
    * ``.onnx`` — run by onnxruntime.
    * ``.pt2`` — ``torch.export.save`` archives.
    * ``.pt`` / ``.pth`` / ``.ts`` — TorchScript archives (``torch.jit.save``).

    Pickle-based files (``.pkl``, ``.pickle``, ``.joblib``, ``.sav``, and ``.pt`` files written
    by ``torch.save(module)``) can run arbitrary code when loaded, so they are refused unless
    ``trust=True``.

    Parameters
    ----------
    path : str or path-like
    trust : bool
        Allow formats that execute code from the file (pickle, joblib, full torch modules,
        Keras lambda layers). Only for files you made yourself or fully trust.
    **hints
        Passed to :func:`lumos.wrap` (``feature_names``, ``class_names``, ``output_kind``, ...).

    Returns
    -------
    Model

    Raises
    ------
    UnsafeModelError
        The file can execute code and ``trust`` is False.
    ModelError
        The file does not exist, or is of an unsupported or broken format.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"model file {path!r} does not exist.")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".keras":
        return wrap(_load_keras(path, trust=trust), **hints)
    if ext == ".onnx":
        from lumos.models.onnx import OnnxModel

        return OnnxModel(path, **hints)
    if ext == ".pt2":
        return wrap(_load_exported(path), **hints)
    if ext in _TORCH_EXTS:
        return wrap(_load_torch(path, trust=trust), **hints)
    if ext in _PICKLE_EXTS:
        if not trust:
            raise UnsafeModelError(
                f"{os.path.basename(path)!r} is a pickle/joblib file: loading it runs whatever "
                "code the file contains. Export the model to ONNX, .keras or TorchScript instead, "
                "or, if you made this file yourself, pass trust=True "
                "(CLI: --trust) to load it anyway."
            )
        return wrap(_load_pickle(path), **hints)
    raise ModelError(
        f"unsupported model file extension {ext!r}; lumos loads .keras, .onnx, .pt2 "
        f"(torch.export), TorchScript .pt/.pth, and (with trust=True) {', '.join(_PICKLE_EXTS)}."
    )


def _load_keras(path: str, *, trust: bool) -> Any:
    from lumos.models.keras import _keras

    keras = _keras()
    try:
        return keras.saving.load_model(path, safe_mode=not trust, compile=False)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "unsafe" in str(exc).lower():
            raise UnsafeModelError(
                f"{os.path.basename(path)!r} contains code (e.g. a Lambda layer) that Keras' safe "
                "mode refuses to deserialise. Pass trust=True if you made this file yourself."
            ) from None
        raise ModelError(f"Keras could not load {path!r}: {exc}") from None
    except Exception as exc:
        raise ModelError(f"Keras could not load {path!r}: {exc}") from None


def _load_exported(path: str) -> Any:
    import torch

    try:
        return torch.export.load(path).module()
    except Exception as exc:
        raise ModelError(f"could not load torch.export file {path!r}: {exc}") from None


def _load_torch(path: str, *, trust: bool) -> Any:
    import torch

    if _is_torchscript(path):
        try:
            return torch.jit.load(path, map_location="cpu")
        except Exception as exc:
            raise ModelError(f"could not load TorchScript file {path!r}: {exc}") from None
    if not trust:
        raise UnsafeModelError(
            f"{os.path.basename(path)!r} is not a TorchScript archive; a file written by "
            "torch.save(module) is a pickle and loading it can run code. Save the model with "
            "torch.export.save(torch.export.export(model, (example,)), 'model.pt2') or export it "
            "to ONNX; for a "
            "state dict, build the module yourself, call "
            "module.load_state_dict(torch.load(path, weights_only=True)) and lumos.wrap(module); "
            "or pass trust=True if you made this file yourself."
        )
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, dict):
        raise ModelError(
            f"{path!r} holds a state dict (weights only), not a model; build the module, "
            "load the weights into it and call lumos.wrap(module)."
        )
    return obj


def _is_torchscript(path: str) -> bool:
    """A TorchScript archive carries its code as text (``code/``) beside ``constants.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def _load_pickle(path: str) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:
        raise ModelError(f"could not unpickle {path!r}: {exc}") from None
