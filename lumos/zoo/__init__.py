"""Reference networks (Keras and torch twins) and a reproducible training helper.

* :func:`keras_mlp` / :func:`torch_mlp`: ``Dense(128, relu) → Dense(64, relu) →
  Dense(n_classes, softmax)`` for tabular data.
* :func:`keras_cnn` / :func:`torch_cnn`: a small channels-first CNN for images.
* :func:`copy_weights`: move weights between a network and its twin, either way.
* :func:`fit`: train either kind reproducibly, with early stopping and a progress bar.
"""

from __future__ import annotations

from lumos.zoo.keras_nets import copy_weights, keras_cnn, keras_mlp
from lumos.zoo.torch_nets import TorchCNN, TorchMLP, torch_cnn, torch_mlp
from lumos.zoo.training import fit

__all__ = [
    "TorchCNN",
    "TorchMLP",
    "copy_weights",
    "fit",
    "keras_cnn",
    "keras_mlp",
    "torch_cnn",
    "torch_mlp",
]
