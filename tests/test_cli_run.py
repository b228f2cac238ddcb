"""``lumos report`` and ``lumos run`` (config files, ``lumos._config``).

Every number the commands write is checked against the Python API run on the same inputs:
saved explanations equal ``lumos.explain`` (1e-12), the evaluation JSON equals
``lumos.evaluate`` (1e-12), performance / permutation importance / surrogate fidelity equal
their functions (1e-12). User errors — bad files, bad configs — exit with code 2 and one line.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import lumos
from lumos import Explanation, GlobalExplanation, datasets, importance, zoo
from lumos._config import evaluate_explanations, example_configs, load_config
from lumos.cli import main
from lumos.metrics import performance as perf

FEATURES = ["age", "bmi", "dose", "iron", "weight", "pulse"]
SECTIONS = ("summary", "data-model", "global", "surrogate", "local", "quality", "caveats")
ATOL = 1e-12


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], (message, lines[0])
    assert "Traceback" not in err


def _same_explanation(a: Explanation, b: Explanation) -> None:
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_allclose(a.prediction, b.prediction, rtol=0, atol=ATOL)
    if a.base_value is None:
        assert b.base_value is None
    else:
        np.testing.assert_allclose(a.base_value, b.base_value, rtol=0, atol=ATOL)
    assert a.method == b.method and a.params == b.params
    assert a.feature_names == b.feature_names and a.class_names == b.class_names


def _same_records(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    keys = ("method", "metric", "rank", "n_valid", "skipped")
    for g, w in zip(got, want, strict=True):
        assert {k: g[k] for k in keys} == {k: w[k] for k in keys}
        for k in ("mean", "stderr"):
            assert (g[k] is None) == (w[k] is None)
            if w[k] is not None:
                np.testing.assert_allclose(g[k], w[k], rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A TorchScript softmax MLP (6 → 3), 40 CSV rows with a label column (the model's
    class, 6 of them changed so accuracy is 34 / 40), and two saved explanations."""
    d = tmp_path_factory.mktemp("report")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1)
    )
    torch.jit.script(mlp).save(str(d / "mlp.pt"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    model = lumos.load_model(d / "mlp.pt", feature_names=FEATURES)
    y = np.argmax(model(x), axis=1)
    y[:6] = (y[:6] + 1) % 3
    lines = [",".join([*FEATURES, "label"])]
    lines += [
        ",".join([*(repr(float(v)) for v in row), str(t)]) for row, t in zip(x, y, strict=True)
    ]
    (d / "x.csv").write_text("\n".join(lines) + "\n")
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    ig = lumos.explain(model, x[:6], method="integrated_gradients", n_steps=16)
    ks = lumos.explain(
        model, x[:6], method="kernel_shap", background=x[30:], n_samples=64, random_state=0
    )
    ig.save(d / "ig.npz")
    ks.save(d / "ks.npz")
    return {"dir": d, "x": x, "y": y, "model": model}


# ---------------------------------------------------------------------- lumos report
def test_report_command_sections_and_numbers(files, tmp_path, capsys) -> None:
    d, x, y, model = files["dir"], files["x"], files["y"], files["model"]
    out = tmp_path / "r.html"
    argv = ["report", str(d / "mlp.pt"), str(d / "x.csv"), str(d / "ig.npz"), str(d / "ks.npz")]
    argv += ["--label-column", "label", "-M", "deletion,sparseness,max_sensitivity"]
    argv += ["-p", "max_sensitivity.n_samples=3", "--out", str(out)]
    code, printed, err = _run(argv, capsys)
    assert code == 0, err
    html = out.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section

    # performance on every row of DATA against the label column: accuracy 34 / 40
    scores = perf.summary(model, x, y)
    assert scores["accuracy"] == pytest.approx(34 / 40, abs=ATOL)
    assert f"<td>accuracy</td><td>{scores['accuracy']:.4g}</td>" in html
    # permutation importance: the printed top features, in order, with their values
    perm = importance.permutation(model, x, y, n_repeats=5, random_state=0)
    rows = [ln for ln in printed.splitlines() if any(f" {n} " in ln for n in FEATURES)]
    for line, j in zip(rows, perm.ranking[:5], strict=True):
        assert f" {FEATURES[j]} " in line and f"{perm.importance[j]:.4g}" in line
    # the surrogate tree's held-out fidelity
    tree = lumos.surrogate.fit(model, x, kind="tree", max_depth=3, random_state=0)
    assert f"fidelity {tree.fidelity:.4f}" in printed
    assert f"fidelity <strong>{tree.fidelity:.4g}</strong>" in html

    # the quality table: lumos.evaluate's numbers; max_sensitivity re-runs the explainer,
    # which the kernel_shap file cannot rebuild (its background is recorded by shape only)
    loaded = {"integrated_gradients": Explanation.load(d / "ig.npz")}
    loaded["kernel_shap"] = Explanation.load(d / "ks.npz")
    table = lumos.evaluate(model, loaded, ["deletion", "sparseness"])
    for r in table.rows():
        assert f"{r['mean']:.3g} ± {r['stderr']:.2g}" in html
    sens = lumos.evaluate(
        model,
        {"integrated_gradients": loaded["integrated_gradients"]},
        {"max_sensitivity": {"n_samples": 3}},
    )
    r = sens[("integrated_gradients", "max_sensitivity")]
    assert f"{r.mean:.3g} ± {r.stderr:.2g}" in html
    assert "skipped max_sensitivity for kernel_shap: re-runs kernel_shap, whose background" in (
        " ".join(printed.split())
    )


def test_evaluate_explanations_skips_only_what_cannot_rerun(files) -> None:
    d, model = files["dir"], files["model"]
    loaded = {"ig": Explanation.load(d / "ig.npz"), "ks": Explanation.load(d / "ks.npz")}
    metrics = {"deletion": {}, "max_sensitivity": {"n_samples": 3}, "sparseness": {}}
    got = evaluate_explanations(model, loaded, metrics, random_state=1)
    assert got.methods == ["ig", "ks"] and got.metrics == list(metrics)
    assert set(got.skipped) == {("ks", "max_sensitivity")}
    assert "background" in got.skipped[("ks", "max_sensitivity")]
    # one lumos.evaluate call per explanation gives the same numbers (a score of one
    # explanation does not depend on the others)
    want_ig = lumos.evaluate(model, {"ig": loaded["ig"]}, metrics, random_state=1)
    plain = {"deletion": {}, "sparseness": {}}
    want_ks = lumos.evaluate(model, {"ks": loaded["ks"]}, plain, random_state=1)
    for (name, metric), result in got.results.items():
        want = (want_ig if name == "ig" else want_ks)[(name, metric)]
        np.testing.assert_allclose(result.scores, want.scores, rtol=0, atol=ATOL)
    assert len(got.results) == 5
    # an explanation made in this session keeps its explainer: nothing is skipped
    fresh = lumos.explain(
        model,
        files["x"][:6],
        method="kernel_shap",
        background=files["x"][30:],
        n_samples=64,
        random_state=0,
    )
    table = evaluate_explanations(model, {"ks": fresh}, metrics, random_state=1)
    assert not table.skipped and len(table.results) == 3


def test_report_keras_model_without_labels(files, tmp_path, capsys) -> None:
    import keras

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    net.save(tmp_path / "net.keras")
    out = tmp_path / "nolabels.html"
    argv = ["report", str(tmp_path / "net.keras"), str(files["dir"] / "x.npy"), "-o", str(out)]
    code, printed, err = _run(argv, capsys)
    assert code == 0, err
    html = out.read_text()
    # no labels: no performance, no permutation, no explanations; the surrogate still runs
    for section in ("summary", "data-model", "global", "surrogate", "caveats"):
        assert f'<section id="{section}">' in html
    assert '<section id="local">' not in html and '<section id="quality">' not in html
    assert "<h3>Performance</h3>" not in html and "no labels" in printed
    model = lumos.load_model(tmp_path / "net.keras")
    tree = lumos.surrogate.fit(model, files["x"], kind="tree", max_depth=3, random_state=0)
    assert f"fidelity {tree.fidelity:.4f}" in printed


def test_report_user_errors(files, tmp_path, capsys) -> None:
    d = files["dir"]
    mlp, csv, ig = str(d / "mlp.pt"), str(d / "x.csv"), str(d / "ig.npz")
    np.save(tmp_path / "short.npy", files["y"][:39])
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    out = ["-o", str(tmp_path / "never.html")]
    cases = {
        "two label sources": (
            [mlp, csv, "--labels", str(d / "y.npy"), "--label-column", "label"],
            "not both",
        ),
        "missing data": ([mlp, str(tmp_path / "no.csv")], "no such file"),
        "label count": ([mlp, str(d / "x.npy"), "--labels", str(tmp_path / "short.npy")], "39"),
        "label column": ([mlp, csv, "--label-column", "y"], "has no column 'y'"),
        "label left in": ([mlp, csv, ig], "explains rows of shape (6,)"),
        "unknown metric": ([mlp, csv, "--label-column", "label", ig, "-M", "delete"], "deletion"),
        "metric parameter": (
            [mlp, csv, "--label-column", "label", ig, "-p", "deletion.steps=3"],
            "has no parameter(s) ['steps']",
        ),
        "metrics, no explanation": ([mlp, csv, "-M", "deletion"], "explanation files"),
        "pickle model": ([str(tmp_path / "model.pkl"), str(d / "x.npy")], "--trust"),
    }
    for args, message in cases.values():
        code, _, err = _run(["report", *args, *out], capsys)
        _one_line_error(code, err, message)
    assert not (tmp_path / "never.html").exists()


# ---------------------------------------------------------------------- lumos run
TINY = """
seed = 3

[data]
dataset = "synthetic_credit"
n = 300

[model]
zoo = "torch_mlp"
hidden = [16, 8]
epochs = 2
learning_rate = 0.01

[[explain]]
method = "integrated_gradients"
rows = 6
n_steps = 16

[[explain]]
method = "kernel_shap"
name = "shap"
rows = 6
background_rows = 20
n_samples = 64

[evaluate]
metrics = ["deletion", "sparseness", "max_sensitivity", "feature_agreement"]

[evaluate.params.max_sensitivity]
n_samples = 3

[global]
permutation = true
n_repeats = 2
surrogate = "tree"
max_depth = 2

[output]
folder = "out"
"""


def test_run_tiny_config_equals_the_python_api(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)  # [output] folder is relative to the current folder
    code, printed, err = _run(["run", "tiny.toml"], capsys)
    assert code == 0, err
    out = tmp_path / "out"
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {
        "explanations/integrated_gradients.npz",
        "explanations/shap.npz",
        "global/permutation.npz",
        "global/surrogate_tree.npz",
        "evaluation.json",
        "evaluation.csv",
        "performance.json",
        "model.pt",
        "config.toml",
        "report.html",
    }
    assert (out / "config.toml").read_text() == TINY

    # the same recipe in Python (torch training is reproducible bit for bit)
    data = datasets.synthetic_credit(300)
    net = zoo.torch_mlp(data.n_features, data.n_classes, hidden=[16, 8], seed=3)
    zoo.fit(net, data.x_train, data.y_train, epochs=2, learning_rate=0.01, seed=3, progress=False)
    model = lumos.wrap(net, feature_names=data.feature_names, class_names=data.class_names)
    x = data.x_test[:6]
    ig = lumos.explain(model, x, method="integrated_gradients", n_steps=16)
    shap = lumos.explain(
        model,
        x,
        method="kernel_shap",
        background=data.x_train[:20],
        n_samples=64,
        random_state=3,  # the config's seed, for a stochastic method without one
    )
    _same_explanation(Explanation.load(out / "explanations/integrated_gradients.npz"), ig)
    _same_explanation(Explanation.load(out / "explanations/shap.npz"), shap)

    table = lumos.evaluate(
        model,
        {"integrated_gradients": ig, "shap": shap},
        {
            "deletion": {},
            "sparseness": {},
            "max_sensitivity": {"n_samples": 3},
            "feature_agreement": {},
        },
        ground_truth=data.ground_truth["relevant"],  # the dataset's own ground truth
        random_state=3,
    )
    want = json.loads(table.to_json())
    assert all(r["mean"] is not None for r in want)  # every pair scored
    _same_records(json.loads((out / "evaluation.json").read_text()), want)
    assert (out / "evaluation.csv").read_text() == table.to_csv()

    scores = json.loads((out / "performance.json").read_text())
    want_scores = perf.summary(model, data.x_test, data.y_test)
    assert scores.keys() == want_scores.keys()
    np.testing.assert_allclose(list(scores.values()), list(want_scores.values()), atol=ATOL)
    perm = importance.permutation(model, data.x_test, data.y_test, n_repeats=2, random_state=3)
    got = GlobalExplanation.load(out / "global/permutation.npz")
    np.testing.assert_allclose(got.importance, perm.importance, rtol=0, atol=ATOL)
    tree = lumos.surrogate.fit(model, data.x_test, kind="tree", max_depth=2, random_state=3)
    got = GlobalExplanation.load(out / "global/surrogate_tree.npz")
    assert got.fidelity == pytest.approx(tree.fidelity, abs=ATOL) and got.rules == tree.rules

    # the trained network, saved as TorchScript, computes what the trained module does
    saved = lumos.load_model(out / "model.pt")
    np.testing.assert_allclose(saved(data.x_test), model(data.x_test), rtol=0, atol=1e-6)

    html = (out / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert "torch_mlp(hidden=[16, 8], epochs=2, learning_rate=0.01, seed=3)" in html
    flat = " ".join(printed.split())
    assert f"accuracy │ {want_scores['accuracy']:.4g}" in flat
    assert "wrote report: out/report.html" in flat


def test_run_data_and_model_files(files, tmp_path, capsys) -> None:
    d = files["dir"]
    (tmp_path / "cfg").mkdir()
    config = f"""
[data]
path = "{d / "x.csv"}"
label_column = "label"
class_names = ["a", "b", "c"]

[model]
path = "../model/mlp.pt"

[[explain]]
method = "saliency"
rows = 4
absolute = false
target = "b"

[output]
folder = "{tmp_path / "result"}"
report = false
"""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mlp.pt").write_bytes((d / "mlp.pt").read_bytes())
    (tmp_path / "cfg" / "file.toml").write_text(config)
    code, _, err = _run(["run", str(tmp_path / "cfg" / "file.toml")], capsys)
    assert code == 0, err
    result = tmp_path / "result"
    # no [evaluate], no report, a loaded model is not saved again; labels: performance
    assert sorted(p.name for p in result.iterdir()) == [
        "config.toml",
        "explanations",
        "performance.json",
    ]
    # no training split for a loaded model: the rows are the file's first rows, in order
    model = lumos.load_model(d / "mlp.pt", feature_names=FEATURES, class_names=["a", "b", "c"])
    want = lumos.explain(model, files["x"][:4], method="saliency", absolute=False, target="b")
    got = Explanation.load(result / "explanations" / "saliency.npz")
    _same_explanation(got, want)
    assert (got.target == 1).all()
    scores = json.loads((result / "performance.json").read_text())
    assert scores["accuracy"] == pytest.approx(34 / 40, abs=ATOL)

    # rows the model cannot take (the label left in: 7 columns): exit 2, one line, the cause
    (tmp_path / "cfg" / "file.toml").write_text(
        config.replace('label_column = "label"', 'labels = "' + str(d / "y.npy") + '"')
    )
    code, _, err = _run(["run", str(tmp_path / "cfg" / "file.toml")], capsys)
    _one_line_error(code, err, "[model]: the model fails on rows of shape (7,)")


BASE = """
[data]
dataset = "breast_cancer"

[model]
zoo = "torch_mlp"
epochs = 1

[[explain]]
method = "integrated_gradients"
rows = 2

[evaluate]
metrics = ["sparseness"]
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("epochs = 1", "epoch = 1", "[model]: unknown key 'epoch' (did you mean 'epochs'?)"),
        ("epochs = 1", 'epochs = "two"', "epochs must be an integer, got 'two' (a string)"),
        ("[model]", "[modle]", "unknown key 'modle' (did you mean 'model'?)"),
        ('[model]\nzoo = "torch_mlp"\nepochs = 1', "", "[model]: this section is missing"),
        ('"integrated_gradients"', '"integrated_gradient"', "Did you mean"),
        ("rows = 2", "rows = 2\nsteps = 4", "unknown key 'steps'"),
        ("rows = 2", "rows = 2\nbackground = 4", "background_rows = N"),
        ("rows = 2", "rows = 0", "rows must be an integer >= 1, got 0"),
        ('["sparseness"]', '["sparsness"]', "Unknown metric 'sparsness'"),
        ('["sparseness"]', '["sparseness"]\nparams.deletion = {}', "not among metrics"),
        ('dataset = "breast_cancer"', 'dataset = "iris"', "Unknown dataset 'iris'"),
        ('dataset = "breast_cancer"', 'path = "nowhere.csv"', "no such file or folder"),
        ('dataset = "breast_cancer"', 'path = "x.csv"', "needs labels"),
        ("[[explain]]", "[explain]", "[[explain]] (double brackets)"),
        ('zoo = "torch_mlp"', 'zoo = "torch_rnn"', "Unknown reference network 'torch_rnn'"),
        ("epochs = 1", "epochs = 1\n[global]\nmax_depth = 2", 'surrogate = "tree"'),
        ("[data]", "[data\n", "is not valid TOML"),
        ("rows = 2", "rows = 500", "only 143 test rows"),  # found at run time
        (
            '["sparseness"]',
            '["sparseness"]\n[output]\nstories = ["image"]',
            "Unknown story 'image'",
        ),
        ('["sparseness"]', '["sparseness"]\n[output]\nstories = "images"', "an array of strings"),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path, capsys, old, new, message) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n3,4\n")
    assert old in BASE
    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace(old, new, 1))
    code, _, err = _run(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, message)
    assert str(path) in err  # the message names the file


def test_run_command_line_errors(tmp_path, capsys) -> None:
    code, _, err = _run(["run", str(tmp_path / "none.toml")], capsys)
    _one_line_error(code, err, "no such config file")
    code, _, err = _run(["run"], capsys)
    _one_line_error(code, err, "--example")
    code, _, err = _run(["run", "lumos:breast_cancr"], capsys)
    _one_line_error(code, err, "Did you mean 'breast_cancer'")


def test_shipped_example_parses(capsys) -> None:
    shipped = example_configs()
    assert "breast_cancer" in shipped
    cfg = load_config("lumos:breast_cancer")
    assert cfg.data.dataset == "breast_cancer" and cfg.model.zoo == "keras_mlp"
    assert [e.method for e in cfg.explain] == [
        "feature_ablation",
        "kernel_shap",
        "integrated_gradients",
    ]
    assert [e.background_rows for e in cfg.explain] == ["all", 50, None]
    assert cfg.explain[1].params == {"n_samples": 256, "random_state": 0}
    assert isinstance(cfg.evaluate.metrics, dict)
    assert "model_randomisation" in cfg.evaluate.metrics
    assert cfg.evaluate.metrics["max_sensitivity"] == {"n_samples": 5}
    g = cfg.global_explanations
    assert g.permutation and g.surrogate == "tree" and g.max_depth == 3
    assert load_config(shipped["breast_cancer"]).explain == cfg.explain
    code, printed, err = _run(["run", "--example", "--check"], capsys)
    assert code == 0, err
    assert "the config is valid" in printed and "kernel_shap" in printed

    # the demo is a shipped config: story 1 in the schema, stories 2-4 by name
    demo = load_config("lumos:demo")
    assert demo.output.stories == ("images", "shortcut", "tradeoff")
    assert demo.output.heading and str(demo.output.folder) == "lumos-demo"
    assert [e.method for e in demo.explain] == [e.method for e in cfg.explain]

    # the wheel ships it: a package-data pattern of pyproject.toml matches the file
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["lumos"]
    for path in (root / "lumos" / "configs").glob("*.toml"):
        relative = path.relative_to(root / "lumos").as_posix()
        # setuptools globs per path component: "*.toml" does not reach into configs/
        assert any(
            fnmatch.fnmatch(relative, p) and p.count("/") == relative.count("/") for p in patterns
        ), relative
