"""Adapters: every kind of model gives the same numbers through one Model protocol."""

from __future__ import annotations

import io
import os
import pickle
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import lumos
from lumos.errors import (
    InputError,
    LumosError,
    ModelError,
    NotDifferentiableError,
    ShapeError,
    UnknownNameError,
    UnsafeModelError,
)

D, H1, H2, K = 6, 8, 5, 3


def torch_net(seed: int = 0, softmax: bool = True) -> torch.nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(D, H1),
        torch.nn.ReLU(),
        torch.nn.Linear(H1, H2),
        torch.nn.ReLU(),
        torch.nn.Linear(H2, K),
        *([torch.nn.Softmax(dim=1)] if softmax else []),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)
    return net.eval()


def linears(net: torch.nn.Sequential) -> list[torch.nn.Linear]:
    return [m for m in net if isinstance(m, torch.nn.Linear)]


def keras_twin(net: torch.nn.Sequential) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((D,)),
            keras.layers.Dense(H1, activation="relu"),
            keras.layers.Dense(H2, activation="relu"),
            keras.layers.Dense(K, activation="softmax"),
        ]
    )
    for layer, lin in zip(model.layers, linears(net), strict=True):
        layer.set_weights([lin.weight.detach().numpy().T, lin.bias.detach().numpy()])
    return model


def sklearn_twin(net: torch.nn.Sequential) -> MLPClassifier:
    rng = np.random.default_rng(0)
    clf = MLPClassifier(hidden_layer_sizes=(H1, H2), max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(rng.normal(size=(30, D)), np.arange(30) % K)
    clf.coefs_ = [lin.weight.detach().numpy().T.astype(np.float64) for lin in linears(net)]
    clf.intercepts_ = [lin.bias.detach().numpy().astype(np.float64) for lin in linears(net)]
    return clf


def onnx_bytes(net: torch.nn.Module, input_shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, *input_shape),),
            buf,
            input_names=["x"],
            output_names=["probabilities"],
            dynamic_axes={"x": {0: "n"}},
            dynamo=False,
        )
    return buf.getvalue()


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(37, D))


def test_every_adapter_gives_the_same_outputs(x: np.ndarray) -> None:
    net = torch_net()
    expected = net(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    assert expected.std() > 0.05  # the network is not trivially constant
    models = {
        "torch": lumos.wrap(net),
        "keras": lumos.wrap(keras_twin(net)),
        "sklearn": lumos.wrap(sklearn_twin(net)),
        "callable": lumos.wrap(
            lambda a: net(torch.as_tensor(a, dtype=torch.float32)).detach().numpy()
        ),
        "onnx": lumos.wrap(onnx_bytes(net, (D,))),
    }
    for name, model in models.items():
        out = model(x)
        assert out.shape == (len(x), K), name
        assert out.dtype == np.float64, name
        np.testing.assert_allclose(out, expected, atol=1e-5, err_msg=name)
        assert model.output_kind == "probability", name
        assert model.n_outputs == K, name
        assert model.input_shape == (D,), name


def test_gradients_reach_the_input_for_torch_and_keras(x: np.ndarray) -> None:
    net = torch_net()
    grads = []
    for model in (lumos.wrap(net), lumos.wrap(keras_twin(net))):
        assert model.differentiable
        xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
        out = model(xt, grad=True)
        assert isinstance(out, torch.Tensor) and out.requires_grad
        out[:, 1].sum().backward()
        assert xt.grad is not None and float(xt.grad.abs().sum()) > 0
        grads.append(xt.grad.numpy().copy())
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-5)
    # the closed form for one row: d softmax_1 / dx through the ReLU network
    xt = torch.tensor(x[:1], dtype=torch.float32)
    jac = torch.autograd.functional.jacobian(lambda a: net(a)[0, 1], xt)
    np.testing.assert_allclose(grads[0][0], jac.numpy()[0], atol=1e-6)


def test_black_boxes_refuse_gradients(x: np.ndarray) -> None:
    for obj in (sklearn_twin(torch_net()), lambda a: a[:, :2], onnx_bytes(torch_net(), (D,))):
        model = lumos.wrap(obj)
        assert not model.differentiable
        with pytest.raises(NotDifferentiableError, match="model-agnostic"):
            model(x, grad=True)


def test_evaluation_is_chunked_without_autograd_and_batch_size_invariant(x: np.ndarray) -> None:
    net = torch_net()
    calls: list[int] = []
    net.register_forward_pre_hook(lambda mod, inp: calls.append(inp[0].shape[0]))
    grad_flags: list[bool] = []
    net.register_forward_hook(lambda mod, inp, out: grad_flags.append(out.requires_grad))
    model = lumos.wrap(net)
    outs = {bs: model(x, batch_size=bs) for bs in (1, 7, 1024)}
    assert calls[: len(x)] == [1] * len(x)
    assert calls[len(x) : len(x) + 6] == [7, 7, 7, 7, 7, 2]
    assert not any(grad_flags)
    assert all(p.grad is None and p.requires_grad for p in net.parameters())
    np.testing.assert_allclose(outs[1], outs[1024], atol=1e-6)
    np.testing.assert_allclose(outs[7], outs[1024], atol=1e-6)
    # float64 row-wise black box: chunking is exactly invariant (BLAS matmul is not, by ulps)
    f = lumos.wrap(lambda a: np.tanh(2.0 * a[:, :2] + a[:, 2:4] * a[:, 4:6]))
    assert np.array_equal(f(x, batch_size=1), f(x, batch_size=1024))


def test_wrap_hint_sets_default_batch_size(x: np.ndarray) -> None:
    sizes: list[int] = []
    model = lumos.wrap(lambda a: sizes.append(len(a)) or a.sum(axis=1), batch_size=10)
    model(x)
    assert sizes == [10, 10, 10, 7]


def test_output_kind_detection_and_override(x: np.ndarray) -> None:
    assert lumos.wrap(torch_net(softmax=False)).output_kind == "logit"
    reg = torch.nn.Sequential(torch.nn.Linear(D, 1))
    assert lumos.wrap(reg).output_kind == "regression"
    assert lumos.wrap(reg, output_kind="logit").output_kind == "logit"
    with pytest.raises(UnknownNameError, match="probability"):
        lumos.wrap(reg, output_kind="probabilty")
    y = (x[:, 0] > 0).astype(int)
    assert lumos.wrap(LogisticRegression().fit(x, y)).output_kind == "probability"
    svc = lumos.wrap(SVC().fit(x, y))
    assert svc.output_kind == "logit" and svc.n_outputs == 1
    assert lumos.wrap(LinearRegression().fit(x, x[:, 1])).output_kind == "regression"
    probs = lumos.wrap(lambda a: np.full((len(a), 2), 0.5), input_shape=(D,))
    assert probs.output_kind == "probability"
    assert lumos.wrap(lambda a: a[:, :3], input_shape=(D,)).output_kind == "logit"
    # TorchScript keeps the last layer's class name: scripted / traced softmax nets too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(torch_net())
        traced = torch.jit.trace(torch_net(), torch.zeros(2, D))
    assert lumos.wrap(scripted).output_kind == "probability"
    assert lumos.wrap(traced).output_kind == "probability"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = torch.jit.script(torch_net(softmax=False))
    assert lumos.wrap(plain, input_shape=(D,)).output_kind == "logit"


def test_sklearn_pipeline_and_dataframe_names(x: np.ndarray) -> None:
    names = [f"f{i}" for i in range(D)]
    frame = pd.DataFrame(x, columns=names)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)
    model = lumos.wrap(pipe)
    assert model.feature_names == names and model.class_names == ["0", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" warning
        np.testing.assert_allclose(model(x), pipe.predict_proba(frame), atol=1e-12)
        np.testing.assert_allclose(model(frame), pipe.predict_proba(frame), atol=1e-12)
    with pytest.raises(InputError, match="reorder"):
        model(frame[names[::-1]])


def test_dataframe_and_tensor_inputs_for_torch(x: np.ndarray) -> None:
    net = torch_net()
    model = lumos.wrap(net)
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(D)])
    np.testing.assert_allclose(model(frame), model(x))
    assert model.feature_names == list(frame.columns)
    np.testing.assert_allclose(model(torch.tensor(x)), model(x))


def test_device_handling() -> None:
    net = torch_net()
    if torch.cuda.is_available():
        model = lumos.wrap(net, device="cuda")
        assert model.device.startswith("cuda")
    else:
        with pytest.raises(ModelError, match="device='cpu'"):
            lumos.wrap(net, device="cuda")
    assert lumos.wrap(torch_net(), device="cpu").device == "cpu"


def test_input_shape_from_a_first_linear_layer_unless_a_flatten_comes_first() -> None:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 2))
    assert lumos.wrap(mlp).input_shape == (5,)
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    model = lumos.wrap(flat)
    assert model.input_shape is None  # learnt from the data
    images = np.random.default_rng(0).random((2, 1, 4, 4))
    expected = flat(torch.as_tensor(images, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(model(images), expected, rtol=1e-6)
    assert model.input_shape == (1, 4, 4)


def test_wrap_rejects_what_is_not_a_model() -> None:
    with pytest.raises(ModelError, match="cannot wrap"):
        lumos.wrap(42)
    with pytest.raises(ModelError, match="load_model"):
        lumos.wrap("model.keras")
    with pytest.raises(UnknownNameError, match="input_shape"):
        lumos.wrap(torch_net(), input_shap=(3,))
    with pytest.raises(ModelError, match="fitted"):
        lumos.wrap(LogisticRegression())


def test_model_returning_bad_shapes_is_reported(x: np.ndarray) -> None:
    with pytest.raises(ShapeError, match="one row of outputs per input row"):
        lumos.wrap(lambda a: a[:2])(x)
    with pytest.raises(ModelError, match="numbers"):
        lumos.wrap(lambda a: np.array(["yes"] * len(a)))(x)


def test_fingerprint_tracks_parameters() -> None:
    a, b = lumos.wrap(torch_net(0)), lumos.wrap(torch_net(0))
    assert a.fingerprint == b.fingerprint
    assert lumos.wrap(torch_net(1)).fingerprint != a.fingerprint
    net = torch_net(0)
    ka, kb = lumos.wrap(keras_twin(net)), lumos.wrap(keras_twin(net))
    assert ka.fingerprint == kb.fingerprint != a.fingerprint


# ---------------------------------------------------------------------- load_model
class _Exploit:
    """Unpickling this writes a file: the harm a pickle can do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_load_model_formats_round_trip(tmp_path, x: np.ndarray) -> None:
    net = torch_net()
    expected = lumos.wrap(net)(x)
    kpath = tmp_path / "m.keras"
    keras_twin(net).save(kpath)
    opath = tmp_path / "m.onnx"
    opath.write_bytes(onnx_bytes(net, (D,)))
    tpath = tmp_path / "m.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, torch.zeros(1, D)), tpath)
    epath = tmp_path / "m.pt2"
    batch = torch.export.Dim("batch", min=1)
    torch.export.save(
        torch.export.export(net, (torch.zeros(2, D),), dynamic_shapes=({0: batch},)), epath
    )
    for path in (kpath, opath, tpath, epath):
        model = lumos.load_model(path, feature_names=[f"f{i}" for i in range(D)])
        np.testing.assert_allclose(model(x), expected, atol=1e-5, err_msg=str(path))
        assert model.feature_names[0] == "f0"
    assert lumos.load_model(kpath).differentiable


def test_pickle_files_are_refused_without_trust(tmp_path, x: np.ndarray) -> None:
    marker = tmp_path / "pwned"
    for ext in (".pkl", ".joblib"):
        evil = tmp_path / f"evil{ext}"
        evil.write_bytes(pickle.dumps(_Exploit(str(marker))))
        with pytest.raises(UnsafeModelError, match="trust=True"):
            lumos.load_model(evil)
        assert not marker.exists()
    # torch.save(module) is a pickle too
    tpath = tmp_path / "full.pt"
    torch.save(torch_net(), tpath)
    with pytest.raises(UnsafeModelError, match=r"torch\.export"):
        lumos.load_model(tpath)
    assert isinstance(UnsafeModelError("x"), LumosError)
    # opting in works for a file the user made
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    good = tmp_path / "clf.pkl"
    good.write_bytes(pickle.dumps(clf))
    np.testing.assert_allclose(lumos.load_model(good, trust=True)(x), clf.predict_proba(x))
    np.testing.assert_allclose(lumos.load_model(tpath, trust=True)(x), lumos.wrap(torch_net())(x))


def test_keras_lambda_layers_need_trust(tmp_path) -> None:
    model = keras.Sequential([keras.Input((D,)), keras.layers.Lambda(lambda t: t * 2.0)])
    path = tmp_path / "lam.keras"
    model.save(path)
    with pytest.raises(UnsafeModelError, match="trust=True"):
        lumos.load_model(path)
    loaded = lumos.load_model(path, trust=True)
    np.testing.assert_allclose(loaded(np.ones((2, D))), 2.0 * np.ones((2, D)))


def test_load_model_bad_paths(tmp_path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        lumos.load_model(tmp_path / "missing.onnx")
    odd = tmp_path / "model.xyz"
    odd.write_text("hi")
    with pytest.raises(ModelError, match=r"\.keras, \.onnx"):
        lumos.load_model(odd)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="onnxruntime"):
        lumos.load_model(broken)
    state = tmp_path / "weights.pt"
    torch.save(torch_net().state_dict(), state)
    with pytest.raises(ModelError, match="state dict"):
        lumos.load_model(state, trust=True)
    assert os.path.exists(state)


def test_sklearn_method_choice(x: np.ndarray) -> None:
    y = np.arange(len(x)) % 3
    svc = SVC().fit(x, y)
    labels = lumos.wrap(svc, method="predict")
    onehot = labels(x)
    np.testing.assert_array_equal(onehot.argmax(1), svc.predict(x))
    np.testing.assert_array_equal(onehot.sum(1), 1.0)
    assert labels.output_kind == "probability"
    scores = lumos.wrap(svc, method="decision_function")
    np.testing.assert_allclose(scores(x), svc.decision_function(x))
    assert scores.output_kind == "logit" and scores.n_outputs == 3
    with pytest.raises(ModelError, match="predict_proba"):
        lumos.wrap(svc, method="predict_proba")
    with pytest.raises(UnknownNameError):
        lumos.wrap(svc, method="transform")


def test_onnx_fixed_batch_and_output_choice(x: np.ndarray) -> None:
    import onnx

    net = torch_net()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros(1, D),), buf, input_names=["x"], output_names=["out"], dynamo=False
        )
    fixed = lumos.wrap(buf.getvalue())  # batch dimension fixed at 1 in the graph
    np.testing.assert_allclose(fixed(x), lumos.wrap(net)(x), atol=1e-5)
    proto = onnx.load_from_string(onnx_bytes(net, (D,)))
    assert lumos.wrap(proto, output_name="probabilities").n_outputs == K
    with pytest.raises(ModelError, match="does not exist"):
        lumos.wrap(proto, output_name="logits")


def test_fingerprint_follows_in_place_updates_replacements_and_renames() -> None:
    """The cached fingerprint is recomputed whenever a parameter is changed in place,
    replaced or moved to another name, and then equals a fresh model's."""
    net = torch_net(0)
    model = lumos.wrap(net)
    before = model.fingerprint
    assert model.fingerprint == before  # cached, unchanged
    first = next(net.parameters())
    saved = first.detach().clone()
    with torch.no_grad():
        first.add_(1.0)
    assert model.fingerprint != before
    assert model.fingerprint == lumos.wrap(net).fingerprint
    with torch.no_grad():
        first.copy_(saved)
    assert model.fingerprint == before  # the same values, the same digest
    name = next(n for n, _ in net.named_children() if list(net.get_submodule(n).parameters()))
    layer = net.get_submodule(name)
    layer.weight = torch.nn.Parameter(layer.weight.detach() * 2)  # a replaced parameter
    assert model.fingerprint not in (before, lumos.wrap(torch_net(0)).fingerprint)
    wrapper = torch.nn.Module()
    wrapper.add_module("a", torch_net(0))
    w_model = lumos.wrap(wrapper)
    renamed = torch.nn.Module()
    renamed.add_module("b", wrapper.a)  # the same tensors under another name
    assert lumos.wrap(renamed).fingerprint != w_model.fingerprint
    del wrapper.a
    wrapper.add_module("b", renamed.b)
    assert w_model.fingerprint == lumos.wrap(renamed).fingerprint


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_module_walk_visits_what_named_modules_visits() -> None:
    """``_walk`` (eval mode, fingerprints) visits every module in the order, with the depths
    and names, of ``named_modules(remove_duplicate=False)``, TorchScript modules included."""
    from lumos.models.torch import _walk

    shared = torch.nn.Linear(3, 3)
    net = torch.nn.Sequential(
        torch.nn.Sequential(shared, torch.nn.ReLU()), shared, torch.nn.Sequential()
    )
    scripted = torch.jit.script(torch_net(0))
    for module in (net, scripted, torch_net(0)):
        paths, prefix = [], []
        for depth, name, _ in _walk(module):
            del prefix[depth:]
            prefix.append(name)
            paths.append(".".join(p for p in prefix if p))
        assert paths == [n for n, _ in module.named_modules(remove_duplicate=False)]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_eval_mode_finds_any_training_part() -> None:
    """Explanations switch a model to eval mode when any part of it trains, however deep,
    past empty (None) children, in TorchScript modules too; the model's own flags are left
    alone when nothing trains."""
    from lumos.models.torch import eval_mode

    inner = torch.nn.Dropout(0.5)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Sequential(torch.nn.ReLU(), inner))
    net.register_module("unused", None)
    scripted = torch.jit.script(torch_net(0))
    for module, deep in ((net, inner), (scripted, next(iter(scripted.children())))):
        module.eval()
        deep.train()
        assert [m.training for m in module.modules()].count(True) >= 1
        eval_mode(module)
        assert not any(m.training for m in module.modules())


def test_flipped_views_are_accepted(x: np.ndarray) -> None:
    """Views with negative strides (``x[::-1]``, ``np.flip``), which ``torch.as_tensor``
    refuses, give what their contiguous copies give: model calls, gradients, perturbations."""
    net = torch_net(0)
    for model in (lumos.wrap(net), lumos.wrap(keras_twin(net))):
        for view in (x[::-1], np.flip(x, axis=1)):
            np.testing.assert_array_equal(model(view), model(view.copy()))
            for method in ("saliency", "integrated_gradients", "feature_ablation"):
                a = lumos.explain(model, view, method=method, target=1).values
                b = lumos.explain(model, view.copy(), method=method, target=1).values
                np.testing.assert_array_equal(a, b, err_msg=method)
