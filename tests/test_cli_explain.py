"""``lumos explain`` / ``lumos evaluate`` and the data files they read (``lumos._io``).

Each command's output is checked against the Python API run on the same files: the saved
explanation equals ``lumos.explain`` (1e-12) and the JSON table equals
``lumos.evaluate(...).to_json()`` (1e-12). User errors exit with code 2 and one line.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import lumos
from lumos import Explanation
from lumos._io import load_data
from lumos.cli import main

FEATURES = ["age", "bmi", "dose", "score"]
ATOL = 1e-12


def _write_csv(path, x, names, label=None) -> None:
    head = [*names, "label"] if label is not None else list(names)
    lines = [",".join(head)]
    for i, row in enumerate(x):
        cells = [repr(float(v)) for v in row]
        if label is not None:
            cells.append(str(label[i]))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A TorchScript MLP (4 → 3) and CNN (1×6×6 → 2), with tabular and image data files."""
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    torch.jit.script(mlp).save(str(d / "mlp.pt"))
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32, 2)
    )
    torch.jit.trace(cnn.eval(), torch.zeros(2, 1, 6, 6)).save(str(d / "cnn.pt"))
    torch.save(mlp, d / "module.pt")  # a pickle of the whole module: must be refused

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4))
    bg = rng.normal(size=(8, 4))
    _write_csv(d / "x.csv", x, FEATURES, label=[0, 1, 2, 0, 1, 2])
    np.save(d / "x.npy", x)
    np.savez(d / "xs.npz", rows=x, background=bg)
    np.save(d / "bg.npy", bg)
    pixels = rng.integers(0, 256, size=(3, 6, 6), dtype=np.uint8)
    (d / "images").mkdir()
    for i, p in enumerate(pixels):
        Image.fromarray(p, mode="L").save(d / "images" / f"img{i}.png")
    (d / "images" / "notes.txt").write_text("not an image")  # ignored
    return {"dir": d, "x": x, "bg": bg, "pixels": pixels, "mlp": mlp}


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main([*argv, "--no-progress"] if argv[0] in ("explain", "evaluate") else argv)
    out, err = capsys.readouterr()
    return code, out, err


def _same_explanation(a: Explanation, b: Explanation) -> None:
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=ATOL)
    np.testing.assert_allclose(a.data, b.data, rtol=0, atol=0)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_allclose(a.prediction, b.prediction, rtol=0, atol=ATOL)
    if a.base_value is None:
        assert b.base_value is None
    else:
        np.testing.assert_allclose(a.base_value, b.base_value, rtol=0, atol=ATOL)
    assert a.method == b.method and a.params == b.params
    assert a.feature_names == b.feature_names and a.class_names == b.class_names


# ---------------------------------------------------------------------- load_data
def test_load_data_formats(files, tmp_path) -> None:
    d, x = files["dir"], files["x"]
    got, names = load_data(d / "x.csv", drop="label")
    np.testing.assert_array_equal(got, x)  # repr() round-trips float64 exactly
    assert names == FEATURES
    got, names = load_data(d / "x.csv")
    np.testing.assert_array_equal(got[:, 4], [0, 1, 2, 0, 1, 2])
    assert names == [*FEATURES, "label"]
    assert load_data(d / "x.npy")[1] is None
    np.testing.assert_array_equal(load_data(d / "x.npy")[0], x)
    np.testing.assert_array_equal(load_data(d / "xs.npz", key="background")[0], files["bg"])
    np.savez(tmp_path / "one.npz", only=x[:2])
    np.testing.assert_array_equal(load_data(tmp_path / "one.npz")[0], x[:2])

    # grayscale folder: sorted names, (n, 1, H, W), pixel / 255 exactly; other files ignored
    imgs, names = load_data(d / "images")
    assert names is None and imgs.shape == (3, 1, 6, 6) and imgs.dtype == np.float64
    np.testing.assert_array_equal(imgs[:, 0], files["pixels"] / 255.0)

    # colour: channels first, channel c = the c-th RGB plane; an opaque alpha is dropped
    rgb = np.random.default_rng(1).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "rgb.png")
    rgba = np.concatenate([rgb, np.full((5, 7, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "opaque.png")
    for name in ("rgb.png", "opaque.png"):
        img, _ = load_data(tmp_path / name)
        assert img.shape == (1, 3, 5, 7)
        for c in range(3):
            np.testing.assert_array_equal(img[0, c], rgb[:, :, c] / 255.0)
    # 16-bit grayscale scales by 65535
    deep = np.array([[0, 1000, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(load_data(tmp_path / "deep.png")[0][0, 0], deep / 65535.0)
    # JPEG: the decoded pixels, channels first
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "photo.jpg", quality=95)
    decoded = np.asarray(Image.open(tmp_path / "photo.jpg"), dtype=np.float64) / 255.0
    np.testing.assert_array_equal(
        load_data(tmp_path / "photo.jpg")[0][0], decoded.transpose(2, 0, 1)
    )


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (lambda p: p.write_text("a,b\n1,x\n"), {}, "column 'b'"),
        (lambda p: p.write_text("1,2\n3,4\n"), {}, "header"),
        (lambda p: p.write_text("a,b\n1,2,3\n"), {}, "3 field(s)"),
        (lambda p: p.write_text("a,b\n1,2\n"), {"drop": "label"}, "cannot drop"),
        (lambda p: p.write_text("a,a\n1,2\n"), {}, "twice"),
        (lambda p: p.write_text("a,b\n"), {}, "no rows"),
    ],
)
def test_load_data_bad_csv(tmp_path, make, kwargs, message) -> None:
    path = tmp_path / "bad.csv"
    make(path)
    with pytest.raises(lumos.LumosError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_data(path, **kwargs)


def test_load_data_bad_files(tmp_path) -> None:
    np.save(tmp_path / "vec.npy", np.arange(3.0))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "two.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    (tmp_path / "x.parquet").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    cases = {
        "vec.npy": "without a row axis",
        "obj.npy": "pickle",
        "two.npz": "holds 2 arrays",
        "junk.npy": "cannot read",
        "x.parquet": "unsupported extension",
        "empty": "holds no PNG",
        "missing.csv": "no such file",
    }
    for name, message in cases.items():
        with pytest.raises(lumos.LumosError, match=message):
            load_data(tmp_path / name)
    # a 1-D array is fine where no row axis is needed (a ground-truth vector)
    np.testing.assert_array_equal(load_data(tmp_path / "vec.npy", row_axis=False)[0], [0, 1, 2])
    with pytest.raises(lumos.LumosError, match="no array 'c'"):
        load_data(tmp_path / "two.npz", key="c")
    # transparent pixels are refused, as are folders of mixed sizes
    rgba = np.zeros((2, 2, 4), np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "clear.png")
    with pytest.raises(lumos.LumosError, match="transparent"):
        load_data(tmp_path / "clear.png")
    (tmp_path / "mixed").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "mixed" / "b.png")
    with pytest.raises(lumos.LumosError, match="differ in size"):
        load_data(tmp_path / "mixed")


# ---------------------------------------------------------------------- explain
def test_explain_csv_equals_the_python_api(files, tmp_path, capsys) -> None:
    d, x = files["dir"], files["x"]
    out = tmp_path / "ig.npz"
    argv = ["explain", str(d / "mlp.pt"), str(d / "x.csv"), "--method", "integrated_gradients"]
    code, printed, err = _run(
        [*argv, "--drop", "label", "-p", "n_steps=16", "--out", str(out)], capsys
    )
    assert code == 0, err
    got = Explanation.load(out)
    model = lumos.load_model(d / "mlp.pt", feature_names=FEATURES)
    want = lumos.explain(model, x, method="integrated_gradients", n_steps=16)
    _same_explanation(got, want)
    assert got.params["n_steps"] == 16 and got.feature_names == FEATURES
    # the summary names the method and lists the features by mean |attribution|
    order = np.argsort(-np.abs(want.values).mean(axis=0), kind="stable")
    assert "integrated_gradients" in printed and "6 row(s)" in printed
    positions = [printed.index(f" {FEATURES[j]} ") for j in order]
    assert positions == sorted(positions)


def test_explain_npz_background_target_rows(files, tmp_path, capsys) -> None:
    d, x = files["dir"], files["x"]
    out = tmp_path / "ks.npz"
    argv = ["explain", str(d / "mlp.pt"), str(d / "xs.npz"), "--key", "rows", "-m", "kernel_shap"]
    argv += ["--background", str(d / "bg.npy"), "--rows", "4", "--target", "dog"]
    argv += ["--class-names", "cat,dog,fish", "-p", "n_samples=64", "-p", "random_state=3"]
    code, _, err = _run([*argv, "--out", str(out)], capsys)
    assert code == 0, err
    model = lumos.load_model(d / "mlp.pt", class_names=["cat", "dog", "fish"])
    want = lumos.explain(
        model,
        x[:4],
        method="kernel_shap",
        target="dog",
        background=files["bg"],
        n_samples=64,
        random_state=3,
    )
    got = Explanation.load(out)
    _same_explanation(got, want)
    assert len(got) == 4 and (got.target == 1).all() and got.params["random_state"] == 3
    # Shapley efficiency holds for what the command wrote: sum φ = f(x) - E f(background)
    np.testing.assert_allclose(got.values.sum(axis=1), got.prediction - got.base_value, atol=1e-9)


def test_explain_image_folder(files, tmp_path, capsys) -> None:
    d = files["dir"]
    out = tmp_path / "occ.npz"
    argv = ["explain", str(d / "cnn.pt"), str(d / "images"), "-m", "occlusion"]
    code, _, err = _run([*argv, "-p", "window=[2,2]", "--target", "1", "-o", str(out)], capsys)
    assert code == 0, err
    got = Explanation.load(out)
    x = files["pixels"][:, None] / 255.0
    np.testing.assert_array_equal(got.data, x)
    want = lumos.explain(
        lumos.load_model(d / "cnn.pt"), x, method="occlusion", window=[2, 2], target=1
    )
    _same_explanation(got, want)
    assert got.input_shape == (1, 6, 6) and (got.target == 1).all()


def test_explain_torch_export_model(files, tmp_path, capsys) -> None:
    mlp, x = files["mlp"], files["x"]
    batch = torch.export.Dim("batch")
    exported = torch.export.export(mlp, (torch.zeros(2, 4),), dynamic_shapes=({0: batch},))
    torch.export.save(exported, tmp_path / "mlp.pt2")
    out = tmp_path / "ixg.npz"
    argv = ["explain", str(tmp_path / "mlp.pt2"), str(files["dir"] / "x.npy")]
    code, _, err = _run([*argv, "-m", "input_x_gradient", "-o", str(out)], capsys)
    assert code == 0, err
    got = Explanation.load(out)
    model = lumos.load_model(tmp_path / "mlp.pt2")
    _same_explanation(got, lumos.explain(model, x, method="input_x_gradient"))
    # input × gradient of the eager module, by autograd (float32 model)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    y = mlp(xt)
    t = y.argmax(dim=1)
    (grad,) = torch.autograd.grad(y[torch.arange(6), t].sum(), xt)
    np.testing.assert_allclose(got.values, x * grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.target, t.numpy())

    # exported with a fixed batch of 2: refused before the long step, with the fix
    fixed = torch.export.export(mlp, (torch.zeros(2, 4),))
    torch.export.save(fixed, tmp_path / "fixed.pt2")
    argv = ["explain", str(tmp_path / "fixed.pt2"), str(files["dir"] / "x.npy")]
    code, _, err = _run([*argv, "-m", "saliency", "-o", str(tmp_path / "no.npz")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "dynamic_shapes" in err
    assert not (tmp_path / "no.npz").exists()


def test_explain_onnx_model(files, tmp_path, capsys) -> None:
    mlp, x = files["mlp"], files["x"]
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(
        mlp,
        (torch.zeros(2, 4),),
        path,
        input_names=["x"],
        dynamic_axes={"x": {0: "n"}},
        dynamo=False,
    )
    out = tmp_path / "fa.npz"
    argv = ["explain", str(path), str(files["dir"] / "x.csv"), "--drop", "label"]
    code, _, err = _run(
        [*argv, "-m", "feature_ablation", "-p", "baseline=0", "-o", str(out)], capsys
    )
    assert code == 0, err
    got = Explanation.load(out)
    model = lumos.load_model(path, feature_names=FEATURES)
    _same_explanation(got, lumos.explain(model, x, method="feature_ablation", baseline=0))
    # f(x)[t] - f(x with feature j zeroed)[t], by hand on the eager module (float32)
    with torch.no_grad():
        y = mlp(torch.tensor(x, dtype=torch.float32)).double().numpy()
        t = y.argmax(axis=1)
        for j in range(4):
            z = x.copy()
            z[:, j] = 0.0
            yz = mlp(torch.tensor(z, dtype=torch.float32)).double().numpy()
            np.testing.assert_allclose(
                got.values[:, j], y[np.arange(6), t] - yz[np.arange(6), t], atol=1e-5
            )
    # a gradient method on a black box: exit 2, one line naming the alternatives
    code, _, err = _run([*argv, "-m", "saliency", "-o", str(tmp_path / "no.npz")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model-agnostic" in err


def test_explain_keras_model(files, tmp_path, capsys) -> None:
    import keras

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    net.save(tmp_path / "net.keras")
    out = tmp_path / "fa.npz"
    argv = ["explain", str(tmp_path / "net.keras"), str(files["dir"] / "x.npy")]
    code, _, err = _run(
        [*argv, "-m", "feature_ablation", "-p", "baseline=0.5", "-o", str(out)], capsys
    )
    assert code == 0, err
    got = Explanation.load(out)
    model = lumos.load_model(tmp_path / "net.keras")
    want = lumos.explain(model, files["x"], method="feature_ablation", baseline=0.5)
    _same_explanation(got, want)
    # ablation against 0.5: f(x)[t] - f(x with feature j set to 0.5)[t], by hand
    probs = net.predict(files["x"], verbose=0).astype(np.float64)
    t = probs.argmax(axis=1)
    for j in range(4):
        z = files["x"].copy()
        z[:, j] = 0.5
        dropped = net.predict(z, verbose=0).astype(np.float64)[np.arange(6), t]
        np.testing.assert_allclose(got.values[:, j], probs[np.arange(6), t] - dropped, atol=1e-6)


# ---------------------------------------------------------------------- evaluate
def test_evaluate_table_json_csv(files, tmp_path, capsys) -> None:
    d, x = files["dir"], files["x"]
    model_path = str(d / "mlp.pt")
    for method, extra in (("saliency", ["-p", "absolute=false"]), ("input_x_gradient", [])):
        argv = ["explain", model_path, str(d / "x.npy"), "-m", method, *extra]
        assert _run([*argv, "-o", str(tmp_path / f"{method}.npz")], capsys)[0] == 0
    np.save(tmp_path / "truth.npy", np.array([1.0, 0.0, 0.0, 1.0]))
    paths = [str(tmp_path / "saliency.npz"), str(tmp_path / "input_x_gradient.npz")]
    argv = ["evaluate", model_path, str(d / "x.npy"), *paths, "--metrics", "deletion,sparseness"]
    argv += ["-M", "rank_correlation", "-p", "deletion.baseline=mean"]
    argv += ["--ground-truth", str(tmp_path / "truth.npy")]
    argv += ["--json", str(tmp_path / "t.json"), "--csv", str(tmp_path / "t.csv")]
    code, printed, err = _run(argv, capsys)
    assert code == 0, err

    explanations = {
        "saliency": Explanation.load(paths[0]),
        "input_x_gradient": Explanation.load(paths[1]),
    }
    table = lumos.evaluate(
        lumos.load_model(model_path),
        explanations,
        {"deletion": {"baseline": "mean"}, "sparseness": {}, "rank_correlation": {}},
        ground_truth=np.array([1.0, 0.0, 0.0, 1.0]),
    )
    want = json.loads(table.to_json())
    got = json.loads((tmp_path / "t.json").read_text())
    assert len(got) == len(want) == 6
    for g, w in zip(got, want, strict=True):
        assert {k: g[k] for k in ("method", "metric", "rank", "n_valid", "skipped")} == {
            k: w[k] for k in ("method", "metric", "rank", "n_valid", "skipped")
        }
        np.testing.assert_allclose([g["mean"], g["stderr"]], [w["mean"], w["stderr"]], atol=ATOL)
    csv_rows = (tmp_path / "t.csv").read_text().splitlines()
    assert csv_rows[0].startswith("method,metric,") and len(csv_rows) == 7
    # every cell of the printed table: mean ± stderr #rank, metric with its direction
    for metric, arrow in (("deletion", "↓"), ("sparseness", "↑"), ("rank_correlation", "↑")):
        assert f"{metric} {arrow}" in printed
    for rec in want:  # (not a terminal: the table is printed unwrapped)
        assert f"{rec['mean']:.4g} ± {rec['stderr']:.2g} #{rec['rank']:g} " in printed
    assert "saliency" in printed and "input_x_gradient" in printed

    # DATA '-': the rows stored in the explanations, same numbers
    argv2 = ["evaluate", model_path, "-", *paths, "-M", "deletion,sparseness,rank_correlation"]
    argv2 += ["-p", "deletion.baseline=mean", "--ground-truth", str(tmp_path / "truth.npy")]
    code, _, err = _run([*argv2, "--json", str(tmp_path / "t2.json")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "t2.json").read_text()) == got

    # DATA with other rows than the explanations': exit 2, one line
    np.save(tmp_path / "other.npy", x + 1.0)
    code, _, err = _run(
        ["evaluate", model_path, str(tmp_path / "other.npy"), *paths, "-M", "sparseness"], capsys
    )
    assert code == 2 and "not the first rows of DATA" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------- user errors
def _error_cases(d):
    mlp, x = str(d / "mlp.pt"), str(d / "x.npy")
    ex = ["-o", str(d / "never.npz")]
    (d / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    (d / "junk.keras").write_bytes(b"not a keras archive")
    (d / "junk.npy").write_bytes(b"not numpy")
    (d / "mixed").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(d / "mixed" / "a.png")
    Image.fromarray(np.zeros((6, 7), np.uint8)).save(d / "mixed" / "b.png")
    return {
        "missing model": (
            ["explain", str(d / "nope.pt"), x, "-m", "saliency", *ex],
            "does not exist",
        ),
        "missing data": (
            ["explain", mlp, str(d / "nope.csv"), "-m", "saliency", *ex],
            "no such file",
        ),
        "pickle model": (["explain", str(d / "model.pkl"), x, "-m", "saliency", *ex], "--trust"),
        "torch.save module": (
            ["explain", str(d / "module.pt"), x, "-m", "saliency", *ex],
            "pickle",
        ),
        "broken keras": (["explain", str(d / "junk.keras"), x, "-m", "saliency", *ex], "Keras"),
        "broken npy": (["explain", mlp, str(d / "junk.npy"), "-m", "saliency", *ex], "cannot read"),
        "label column": (["explain", mlp, str(d / "x.csv"), "-m", "saliency", *ex], "--drop label"),
        "image sizes": (
            ["explain", mlp, str(d / "mixed"), "-m", "saliency", *ex],
            "differ in size",
        ),
        "npz without key": (["explain", mlp, str(d / "xs.npz"), "-m", "saliency", *ex], "--key"),
        "unknown method": (["explain", mlp, x, "-m", "saliencyy", *ex], "Did you mean 'saliency'"),
        "unknown parameter": (["explain", mlp, x, "-m", "saliency", "-p", "steps=3", *ex], "steps"),
        "bad parameter": (
            ["explain", mlp, x, "-m", "saliency", "-p", "absolute", *ex],
            "key=value",
        ),
        "bad value": (
            ["explain", mlp, x, "-m", "integrated_gradients", "-p", "n_steps=0", *ex],
            "n_steps",
        ),
        "target name": (
            ["explain", mlp, x, "-m", "saliency", "--target", "dog", *ex],
            "--class-names",
        ),
        "target range": (
            ["explain", mlp, x, "-m", "saliency", "--target", "5", *ex],
            "out of range",
        ),
        "unknown metric": (
            ["evaluate", mlp, "-", str(d / "none.npz"), "-M", "sparsness"],
            "sparseness",
        ),
        "missing explanation": (
            ["evaluate", mlp, "-", str(d / "none.npz"), "-M", "sparseness"],
            "no explanation",
        ),
        "metric parameter": (
            [
                "evaluate",
                mlp,
                "-",
                str(d / "none.npz"),
                "-M",
                "sparseness",
                "-p",
                "deletion.n_steps=2",
            ],
            "not among --metrics",
        ),
    }


def test_user_errors_exit_2_with_one_line(files, capsys) -> None:
    for name, (argv, message) in _error_cases(files["dir"]).items():
        code, _, err = _run(argv, capsys)
        assert code == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
        assert message in lines[0], (name, lines[0])
        assert "Traceback" not in err, name
    # the unknown metric's message lists every valid name
    code, _, err = _run(_error_cases(files["dir"])["unknown metric"][0], capsys)
    assert all(m in err for m in lumos.metrics.available_metrics())


def test_python_dash_m_explain(files, tmp_path) -> None:
    d = files["dir"]
    out = tmp_path / "sal.npz"
    cmd = [sys.executable, "-m", "lumos", "explain", str(d / "mlp.pt"), str(d / "x.npy")]
    done = subprocess.run(
        [*cmd, "-m", "saliency", "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "saliency" in done.stdout and str(out) in done.stdout
    want = lumos.explain(lumos.load_model(d / "mlp.pt"), files["x"], method="saliency")
    _same_explanation(Explanation.load(out), want)
    cmd = [sys.executable, "-m", "lumos", "explain", str(d / "module.pt"), str(d / "x.npy")]
    done = subprocess.run(
        [*cmd, "-m", "saliency", "-o", str(tmp_path / "no.npz")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "torch.save" in done.stderr
    assert not (tmp_path / "no.npz").exists()
