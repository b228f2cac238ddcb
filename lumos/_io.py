"""Read data files into arrays: CSV, ``.npy``, ``.npz``, PNG / JPEG images or a folder of them.

Used by the ``lumos`` command (``lumos explain``, ``lumos evaluate``) and by pipeline configs.
Nothing here unpickles: ``.npy`` / ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence

import numpy as np

from lumos.errors import EmptyInputError, InputError, NonNumericError, ShapeError

__all__ = ["IMAGE_EXTENSIONS", "csv_header", "image_files", "label_like_columns", "load_data"]

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_FORMATS = "CSV (.csv), .npy, .npz, a PNG / JPEG image, or a folder of PNG / JPEG images"
#: Column names that usually hold the label rather than a feature.
_LABEL_NAMES = frozenset(
    {"label", "labels", "target", "targets", "y", "class", "classes", "outcome", "diagnosis"}
)


def load_data(
    path: str | os.PathLike[str],
    *,
    key: str | None = None,
    drop: str | Sequence[str] | None = None,
    row_axis: bool = True,
) -> tuple[np.ndarray, list[str] | None]:
    """Read the rows of a data file as an array.

    ``path`` may be:

    * a CSV file — the first line is the header (the feature names), every other line one
      row of numbers; empty cells and ``nan`` become NaN (which lumos later refuses with a
      hint to impute). Columns named in ``drop`` (a label column, an id) are removed first.
    * a ``.npy`` file — one numeric array of shape (n, *input_shape).
    * a ``.npz`` file — the one array it holds, or the array named ``key``.
    * a PNG / JPEG file, or a folder of them (read in sorted file-name order; other files
      and sub-folders are ignored) — pixels scaled to floats in [0, 1] (8-bit by 255,
      16-bit by 65535), channels first: grayscale images give shape (n, 1, H, W), colour
      images (n, 3, H, W). All images must share one size and one colour mode. An alpha
      channel is dropped when it is fully opaque; images with transparent pixels are
      refused (lumos does not guess a background colour).

    Parameters
    ----------
    path : str or path-like
        File or folder to read.
    key : str, optional
        Name of the array to take from a ``.npz`` file holding several.
    drop : str or sequence of str, optional
        CSV columns to leave out (e.g. the label column).
    row_axis : bool, default True
        ``.npy`` / ``.npz`` arrays must have a leading row axis (at least two dimensions).
        ``False`` accepts any shape, e.g. a ground-truth vector of shape (d,).

    Returns
    -------
    array : ndarray of shape (n, *input_shape)
        float64 for CSV and images; ``.npy`` / ``.npz`` arrays keep their numeric dtype
        (booleans become float64).
    feature_names : list of str or None
        The CSV header (after ``drop``); ``None`` for the other formats.

    Raises
    ------
    InputError
        The path does not exist, the format is not supported, the file cannot be read,
        ``key`` / ``drop`` do not fit the file, or images differ in size or mode.
    NonNumericError
        A CSV column or stored array is not numeric.
    ShapeError
        A stored array has fewer than two dimensions (no row axis) and ``row_axis`` is True.
    EmptyInputError
        The file holds no rows.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from lumos._io import load_data
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("age,income,label\\n31,2.5,1\\n45,3.0,0\\n")
    >>> x, names = load_data(path, drop="label")
    >>> x
    array([[31. ,  2.5],
           [45. ,  3. ]])
    >>> names
    ['age', 'income']
    """
    path = os.fspath(path)
    drops = [drop] if isinstance(drop, str) else list(drop or [])
    if not os.path.exists(path):
        raise InputError(f"no such file or folder: {path!r}; check the path.")
    is_dir = os.path.isdir(path)
    ext = "" if is_dir else os.path.splitext(path)[1].lower()
    if key is not None and ext != ".npz":
        raise InputError(f"key={key!r} selects an array of a .npz file; {path!r} is not one.")
    if drops and ext != ".csv":
        raise InputError(
            f"drop={drops} removes CSV columns; {path!r} is not a CSV file. "
            "Remove the column before saving the array instead."
        )
    if is_dir:
        return _stack_images(image_files(path), path), None
    if ext == ".csv":
        return _read_csv(path, drops)
    if ext == ".npy":
        return _check_stored(_read_npy(path), path, row_axis), None
    if ext == ".npz":
        return _check_stored(_read_npz(path, key), path, row_axis), None
    if ext in IMAGE_EXTENSIONS:
        return _stack_images([path], path), None
    raise InputError(
        f"cannot read {path!r}: unsupported extension {ext or '(none)'!r}; lumos reads {_FORMATS}."
    )


def image_files(folder: str | os.PathLike[str]) -> list[str]:
    """The PNG / JPEG files directly inside ``folder``, in sorted file-name order.

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    list of str
        Full paths; hidden files, other extensions and sub-folders are left out.

    Raises
    ------
    InputError
        ``folder`` is not a folder, or holds no PNG / JPEG image.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InputError(f"{folder!r} is not a folder.")
    names = sorted(
        n
        for n in os.listdir(folder)
        if not n.startswith(".")
        and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
        and os.path.isfile(os.path.join(folder, n))
    )
    if not names:
        subfolders = [n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n))]
        where = " (images in sub-folders are not read)" if subfolders else ""
        raise InputError(
            f"folder {folder!r} holds no PNG / JPEG image{where}; put the images to explain "
            "directly in one folder."
        )
    return [os.path.join(folder, n) for n in names]


def label_like_columns(names: Sequence[str] | None) -> list[str]:
    """The column names that look like a label rather than a feature (``label``, ``y``, ...).

    Parameters
    ----------
    names : sequence of str or None

    Returns
    -------
    list of str
    """
    return [n for n in names or [] if n.strip().lower() in _LABEL_NAMES]


def csv_header(path: str | os.PathLike[str]) -> list[str] | None:
    """The column names of a CSV file (its first line), or ``None`` for other files.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list of str or None
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != ".csv" or not os.path.isfile(path):
        return None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f):
                if any(cell.strip() for cell in row):
                    return [h.strip() for h in row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read CSV file {path!r} ({exc}).") from None
    return []


# ---------------------------------------------------------------------- CSV
def _read_csv(path: str, drops: list[str]) -> tuple[np.ndarray, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read CSV file {path!r} ({exc}).") from None
    if not lines:
        raise EmptyInputError(f"CSV file {path!r} is empty; it needs a header line and rows.")
    header = [h.strip() for h in lines[0]]
    if all(_is_number(h) for h in header):
        raise InputError(
            f"the first line of {path!r} holds numbers, not column names; add a header line "
            "with one name per feature."
        )
    for i, h in enumerate(header):
        if not h:
            raise InputError(
                f"column {i + 1} of {path!r} has no name; name every column (a pandas index "
                "column is left out by DataFrame.to_csv(path, index=False))."
            )
    seen = set()
    for h in header:
        if h in seen:
            raise InputError(f"column name {h!r} appears twice in {path!r}; rename one of them.")
        seen.add(h)
    missing = [d for d in drops if d not in header]
    if missing:
        raise InputError(f"cannot drop column(s) {missing}: {path!r} has columns {header}.")
    keep = [i for i, h in enumerate(header) if h not in drops]
    if not keep:
        raise EmptyInputError(f"no columns of {path!r} are left after dropping {drops}.")
    body = lines[1:]
    if not body:
        raise EmptyInputError(f"CSV file {path!r} has a header but no rows.")
    out = np.empty((len(body), len(keep)), dtype=np.float64)
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise InputError(
                f"row {r + 1} of {path!r} has {len(row)} field(s) but the header has "
                f"{len(header)}; every row needs one value per column."
            )
        for c, i in enumerate(keep):
            cell = row[i].strip()
            if not cell:
                out[r, c] = math.nan
                continue
            try:
                out[r, c] = float(cell)
            except ValueError:
                raise NonNumericError(
                    f"column {header[i]!r} of {path!r} is not numeric (row {r + 1}: {cell!r}); "
                    "encode it as numbers, or leave it out with drop="
                    f"{header[i]!r} (command line: --drop {header[i]!r})."
                ) from None
    return out, [header[i] for i in keep]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------- numpy files
def _read_npy(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise InputError(
                f"cannot read {path!r}: it is not a .npy file (no NumPy header); write it with "
                "numpy.save."
            )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputError(
                f"{path!r} holds Python objects (saved with pickle), which lumos does not "
                "load; save a numeric array instead."
            ) from None
        raise InputError(f"cannot read {path!r} as a .npy file ({exc}).") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path!r} as a .npy file ({exc}).") from None


def _read_npz(path: str, key: str | None) -> np.ndarray:
    import zipfile

    if not zipfile.is_zipfile(path):
        raise InputError(
            f"cannot read {path!r}: it is not a .npz file (not a zip archive); write it with "
            "numpy.savez."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if key is None:
                if "__meta__" in names:
                    raise InputError(
                        f"{path!r} is a lumos result file, not data; to use the rows it "
                        "explained, pass key='data' (command line: --key data)."
                    )
                if len(names) != 1:
                    raise InputError(
                        f"{path!r} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                        "say which one with key=NAME (command line: --key NAME for DATA, "
                        "--background-key / --ground-truth-key for those files)."
                    )
                key = names[0]
            if key not in names:
                raise InputError(
                    f"{path!r} has no array {key!r}; its arrays are: {', '.join(names)}."
                )
            return npz[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputError(
                f"array {key!r} of {path!r} holds Python objects (saved with pickle), which "
                "lumos does not load; save numeric arrays instead."
            ) from None
        raise InputError(f"cannot read {path!r} as a .npz file ({exc}).") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path!r} as a .npz file ({exc}).") from None


def _check_stored(arr: np.ndarray, path: str, row_axis: bool) -> np.ndarray:
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise NonNumericError(
            f"{path!r} holds an array of dtype {arr.dtype}; lumos needs real numbers."
        )
    if not row_axis:
        return arr
    if arr.ndim < 2:
        raise ShapeError(
            f"{path!r} holds an array of shape {arr.shape} without a row axis; save it with "
            "shape (n_rows, n_features) (reshape(1, -1) for one row, reshape(-1, 1) for one "
            "feature), or (n, channels, height, width) for images."
        )
    if len(arr) == 0:
        raise EmptyInputError(f"{path!r} holds an array of shape {arr.shape} with no rows.")
    return arr


# ---------------------------------------------------------------------- images
_GRAY = ("1", "L", "I;16", "I;16L", "I;16B", "I;16N", "I")


def _read_image(path: str) -> np.ndarray:
    """One image as float64 of shape (C, H, W) in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (
                mode == "P" and "transparency" in img.info
            ):
                rgba = np.asarray(img.convert("LA" if mode in ("LA", "La") else "RGBA"))
                if (rgba[..., -1] != 255).any():
                    raise InputError(
                        f"image {path!r} has transparent pixels; lumos does not guess a "
                        "background colour: flatten it onto one (e.g. PIL's "
                        "Image.alpha_composite) and save it without alpha."
                    )
                pixels: np.ndarray = rgba[..., :-1]
                scale = 255.0
            elif mode in _GRAY:
                pixels = np.asarray(img)
                scale = 1.0 if mode == "1" else 255.0 if mode == "L" else 65535.0
            else:  # RGB, and palette / CMYK / YCbCr / ... converted to RGB
                pixels = np.asarray(img if mode == "RGB" else img.convert("RGB"))
                scale = 255.0
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"cannot read image {path!r} ({exc}).") from None
    out = pixels.astype(np.float64) / scale
    if not (out.min() >= 0.0 and out.max() <= 1.0):
        raise InputError(
            f"image {path!r} (mode {mode}) has pixel values outside 0..65535; save it as an "
            "8- or 16-bit PNG or a JPEG."
        )
    return out[None] if out.ndim == 2 else np.moveaxis(out, -1, 0)


def _stack_images(files: list[str], where: str) -> np.ndarray:
    images = []
    for f in files:
        img = _read_image(f)
        if images and img.shape != images[0].shape:
            raise InputError(
                f"images in {where!r} differ in size or colour: {os.path.basename(files[0])!r} "
                f"is (C, H, W) = {images[0].shape} but {os.path.basename(f)!r} is {img.shape}; "
                "resize them to one size and one mode (grayscale or RGB) first."
            )
        images.append(img)
    return np.stack(images)
