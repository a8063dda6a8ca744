"""The benchmark's cases, data and contestants: NeuralNetworks, the fused NumPy ceiling, PyTorch, scikit-learn.

A contestant is a ``Trainer``: a function training one epoch over the first ``n`` samples of the shared arrays.
PyTorch and scikit-learn are optional; their factories return None when the package is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _fused_numpy import FusedMLP

from NeuralNetworks.nn import layers, losses, models, optimizers, presets

# Optional packages are imported where used, so a process that needs neither (a memory child) starts fast.
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_THREADPOOLCTL = importlib.util.find_spec("threadpoolctl") is not None

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SEED = 0
LEARNING_RATES = {"sgd": 0.01, "adam": 0.001}
SMALL_MLP = (784, 64, 16, 10)
WIDE_MLP = (784, 512, 256, 10)
IMAGE_SHAPE = (28, 28, 1)
CLASSES = 10
PIXEL_SCALE = 1 / 255
CNN_KINDS = {"cnn": "cnn", "digits": "cnn-digits", "doodles": "cnn-doodles"}  # kind -> case name prefix
CEILING_TRIAL_STEPS = 40  # steps timed per BLAS thread count when the ceiling picks its faster setting

Trainer = Callable[[int], None]


@dataclass(frozen=True)
class Case:
    """One training comparison: an architecture ("mlp" of ``sizes``, a CNN of ``CNN_KINDS`` or the "residual"
    CNN of ``presets.residual_cnn``), a batch, an optimizer."""

    name: str
    kind: str
    batch_size: int
    optimizer: str
    sizes: tuple[int, ...] = ()
    targets: dict[str, float] = field(default_factory=dict)


@dataclass
class Data:
    images: np.ndarray  # uint8 (n, 28, 28, 1)
    labels: np.ndarray  # int64 (n,)
    flat: np.ndarray  # float32 (n, 784) in [0, 1]; empty when not asked for
    source: str


def load_data(path: Path, limit: int | None, with_flat: bool = True) -> Data:
    """MNIST training images from ``path``; random images of the same shape if they cannot be read.

    ``with_flat`` adds the float32 ``(n, 784)`` copy in [0, 1] that the MLP cases train on.
    """
    try:
        from NeuralNetworks.data.mnist import load_mnist

        dataset = load_mnist(path)
        images, labels, source = dataset.x_train[:limit], dataset.y_train[:limit], f"MNIST train set from {path}"
    except (ImportError, OSError, ValueError) as error:
        rng = np.random.default_rng(SEED)
        count = limit or 60000
        images = rng.integers(0, 256, size=(count, *IMAGE_SHAPE), dtype=np.uint8)
        labels = rng.integers(0, CLASSES, size=count)
        source = f"RANDOM data of MNIST shape (MNIST unavailable: {error})"
    flat = np.empty((0, math.prod(IMAGE_SHAPE)), np.float32)
    if with_flat:
        flat = images.reshape(len(images), -1).astype(np.float32)
        flat *= np.float32(PIXEL_SCALE)
    return Data(images, labels.astype(np.int64), flat, source)


# -- NeuralNetworks ------------------------------------------------------------------------------------------
def nn_model(case: Case) -> models.Sequential:
    if case.kind in CNN_KINDS:
        return cnn_model(case)
    if case.kind == "residual":
        return presets.residual_cnn(IMAGE_SHAPE, CLASSES, seed=SEED)
    model = models.Sequential(seed=SEED)
    sizes = case.sizes
    model.add(layers.Dense(sizes[1], activation="relu", input_shape=(sizes[0],)))
    for units in sizes[2:-1]:
        model.add(layers.Dense(units, activation="relu"))
    model.add(layers.Dense(sizes[-1], activation="softmax"))
    return model


def cnn_model(case: Case | None = None) -> models.Sequential:
    """The CNN of ``case.kind``: ``presets.default_cnn`` ("cnn", the default), or the shipped ``digits`` and
    ``doodles`` architectures without their augmentation layers (they only act in training and are not what is
    compared); Keras' classic MNIST convnet, named as a fallback, where the presets are missing."""
    kind = "cnn" if case is None else case.kind
    if kind == "digits" and hasattr(presets, "augmented_cnn"):
        return presets.augmented_cnn(IMAGE_SHAPE, CLASSES, [], hidden_units=presets.DIGITS_HIDDEN_UNITS,
                                     name="digits", seed=SEED)
    if kind == "doodles" and hasattr(presets, "augmented_cnn"):
        return presets.augmented_cnn(IMAGE_SHAPE, CLASSES, [], name="doodles", seed=SEED)
    if hasattr(presets, "default_cnn"):
        return presets.default_cnn(IMAGE_SHAPE, CLASSES, seed=SEED)
    model = models.Sequential(name="fallback_cnn", seed=SEED)
    model.add(layers.Rescaling(PIXEL_SCALE, input_shape=IMAGE_SHAPE))
    model.add(layers.Conv2D(32, 3, activation="relu"))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Conv2D(64, 3, activation="relu"))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(CLASSES, activation="softmax"))
    return model


def training_macs(model: models.Sequential) -> int:
    """Multiply-adds of one forward pass per sample: each kernel entry once per output position."""
    return sum(layer.params["kernel"].size * math.prod(layer.output_shape[:-1])
               for layer in model.layers if "kernel" in layer.params)


def nn_trainer(case: Case, data: Data) -> Trainer:
    model = nn_model(case)
    optimizer = {"sgd": optimizers.SGD, "adam": optimizers.Adam}[case.optimizer](LEARNING_RATES[case.optimizer])
    model.compile(optimizer=optimizer, loss=losses.SparseCategoricalCrossentropy())
    x = data.flat if case.kind == "mlp" else data.images

    def train(n: int) -> None:
        model.fit(x[:n], data.labels[:n], epochs=1, batch_size=case.batch_size, verbose=0)

    return train


# -- the hand-fused ceiling ------------------------------------------------------------------------------------
def ceiling_trainer(case: Case, data: Data) -> Trainer | None:
    """The fused loop with whichever BLAS thread count (one, or all) is faster for this case: a true ceiling."""
    if case.kind != "mlp":
        return None
    network = FusedMLP(case.sizes, case.optimizer, LEARNING_RATES[case.optimizer], seed=SEED)
    rng = np.random.default_rng(SEED)

    def epoch(n: int) -> None:
        network.train_epoch(data.flat, data.labels, rng.permutation(n), case.batch_size)

    if not HAS_THREADPOOLCTL:
        return epoch
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()

    def single_threaded(n: int) -> None:
        with controller.limit(limits=1, user_api="blas"):
            epoch(n)

    trial = min(CEILING_TRIAL_STEPS * case.batch_size, len(data.labels) // case.batch_size * case.batch_size)
    durations = {}
    for candidate in (epoch, single_threaded, epoch, single_threaded):
        start = time.perf_counter()
        candidate(trial)
        durations[candidate] = time.perf_counter() - start  # the second trial of each counts (warm)
    return min(durations, key=durations.get)


# -- PyTorch ---------------------------------------------------------------------------------------------------
def _torch_rescaling(scale: float, offset: float):
    """A module converting uint8 images to float and rescaling them, like the library's Rescaling layer."""
    import torch

    class Rescaling(torch.nn.Module):
        def forward(self, x):
            return x.float() * scale + offset

    return Rescaling()


def _torch_activation(layer):
    import torch

    nn = torch.nn
    config = layer.get_config().get("activation")
    name = config if isinstance(config, str) else (config or {}).get("name", "linear")
    factories = {"linear": None, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                 "leaky_relu": nn.LeakyReLU, "softmax": lambda: nn.Softmax(dim=1)}
    return name, factories[name]


def _torch_modules(layer, last: bool) -> list:
    """The PyTorch modules of one layer (NCHW), its activation included unless it is the output's softmax."""
    import torch

    nn = torch.nn
    modules = []
    kind = type(layer).__name__
    if kind == "Rescaling":
        modules.append(_torch_rescaling(layer.scale, layer.offset))
    elif kind == "Dense":
        modules.append(nn.Linear(layer.input_shape[0], layer.units, bias=layer.use_bias))
    elif kind == "Conv2D":
        # PyTorch has no "same" padding with strides: the symmetric padding gives the same output size
        padding = "same" if layer.padding == "same" and layer.strides == (1, 1) else \
            (layer.kernel_size[0] // 2 if layer.padding == "same" else 0)
        modules.append(nn.Conv2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides,
                                 padding=padding, bias=layer.use_bias))
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = nn.MaxPool2d if kind == "MaxPooling2D" else nn.AvgPool2d
        # "same" pooling pads the bottom / right edge only, which is what ceil_mode does (7 -> 4 by 2)
        modules.append(pool(layer.pool_size, layer.strides, ceil_mode=layer.padding == "same"))
    elif kind == "GlobalAveragePooling2D":
        modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    elif kind == "Flatten":
        modules.append(nn.Flatten())
    elif kind == "Dropout":
        modules.append(nn.Dropout(layer.rate))
    elif kind == "BatchNormalization":
        norm = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
        modules.append(norm(layer.input_shape[-1], eps=layer.epsilon, momentum=1 - layer.momentum))
    elif kind != "Activation":
        raise ValueError(f"No PyTorch mirror for layer {kind}")
    if hasattr(layer, "activation"):
        name, factory = _torch_activation(layer)
        if factory is not None and not (name == "softmax" and last):
            modules.append(factory())
    return modules


def torch_mirror(model: models.Model):
    """The same architecture in PyTorch (NCHW), from the layers' configs; it outputs logits (softmax is in the
    loss), so a final softmax activation is left out. A functional model's graph runs call by call, its Add
    layers summing their inputs."""
    import torch

    nn = torch.nn
    if isinstance(model, models.Sequential):
        last = len(model.layers) - 1
        parts = [_torch_modules(layer, position == last) for position, layer in enumerate(model.layers)]
        for position, (layer, modules) in enumerate(zip(model.layers, parts, strict=True)):
            before = [earlier for earlier in model.layers[:position] if type(earlier).__name__ != "Dropout"]
            copy_weights(layer, modules, before[-1] if before else None)
        return nn.Sequential(*(module for modules in parts for module in modules))
    graph = model.graph
    merges = {"Add"}

    class Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = nn.ModuleList(
                nn.Identity() if type(call.layer).__name__ in merges
                else nn.Sequential(*_torch_modules(call.layer, call.output in graph.outputs))
                for call in graph.calls)
            for call, module in zip(graph.calls, self.calls, strict=True):
                source = graph.calls[call.inputs[0] - 1].layer if call.inputs and call.inputs[0] > 0 else None
                copy_weights(call.layer, list(module.children()), source)

        def forward(self, x):
            values = [x]
            for call, module in zip(graph.calls, self.calls, strict=True):
                if type(call.layer).__name__ in merges:
                    values.append(sum(values[slot] for slot in call.inputs))
                else:
                    values.append(module(values[call.inputs[0]]))
            return values[graph.outputs[0]]

    return Graph()


def copy_weights(layer, modules: list, source) -> None:
    """Give a layer's PyTorch modules the library layer's initial weights: kernels moved to PyTorch's layouts
    (NCHW convolutions, (out, in) Linear), and a Dense fed by a Flatten of images reading PyTorch's (c, h, w)
    order. ``source`` is the layer whose output the layer reads (None for the input)."""
    import torch

    if not layer.params:
        return
    module = modules[0]
    kind = type(layer).__name__
    with torch.no_grad():
        if kind == "Conv2D":
            module.weight.copy_(torch.from_numpy(layer.params["kernel"].transpose(3, 2, 0, 1).copy()))
        elif kind == "Dense":
            kernel = layer.params["kernel"]
            if type(source).__name__ == "Flatten" and len(source.input_shape) == 3:
                kernel = kernel.reshape(*source.input_shape, -1).transpose(2, 0, 1, 3).reshape(len(kernel), -1)
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        elif kind == "BatchNormalization" and "gamma" in layer.params:
            module.weight.copy_(torch.from_numpy(layer.params["gamma"]))
        for ours, theirs in (("bias", "bias"), ("beta", "bias")):
            if ours in layer.params:
                getattr(module, theirs).copy_(torch.from_numpy(layer.params[ours]))


def torch_images(kind: str, data: Data):
    """The contestants' inputs as a tensor sharing memory where it can: NCHW uint8 images or float32 rows."""
    import torch

    if kind != "mlp":
        return torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2)))
    return torch.from_numpy(data.flat)


def torch_trainer(case: Case, data: Data) -> Trainer | None:
    if not HAS_TORCH:
        return None
    import torch

    torch.manual_seed(SEED)
    network = torch_mirror(nn_model(case))
    optimizer_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[case.optimizer]
    optimizer = optimizer_class(network.parameters(), lr=LEARNING_RATES[case.optimizer])
    loss_function = torch.nn.CrossEntropyLoss()
    x, y = torch_images(case.kind, data), torch.from_numpy(data.labels)
    rng = np.random.default_rng(SEED)

    def train(n: int) -> None:
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for start in range(0, n, case.batch_size):
            index = order[start:start + case.batch_size]
            loss = loss_function(network(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()  # the library reports the loss of every batch too

    return train


# -- scikit-learn ------------------------------------------------------------------------------------------------
def sklearn_trainer(case: Case, data: Data) -> Trainer | None:
    if not HAS_SKLEARN or case.kind != "mlp":
        return None
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    classifier = MLPClassifier(hidden_layer_sizes=case.sizes[1:-1], activation="relu", solver=case.optimizer,
                               alpha=0.0, batch_size=case.batch_size, learning_rate_init=LEARNING_RATES[case.optimizer],
                               momentum=0.0, nesterovs_momentum=False, shuffle=True, random_state=SEED)
    classes = np.arange(case.sizes[-1])

    def train(n: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.partial_fit(data.flat[:n], data.labels[:n], classes=classes)

    return train


FACTORIES: dict[str, Callable[[Case, Data], Trainer | None]] = {
    "nn": nn_trainer, "ceiling": ceiling_trainer, "torch": torch_trainer, "sklearn": sklearn_trainer}


# -- single-image inference ------------------------------------------------------------------------------------
def inference_calls(kind: str, data: Data) -> dict[str, Callable[[], object]]:
    """Classify one image: ``model.predict``, ``model(data=...)`` and PyTorch under no_grad (softmax included)."""
    model = cnn_model() if kind == "cnn" else nn_model(Case("infer", "mlp", 1, "sgd", SMALL_MLP))
    batch = data.images[:1] if kind == "cnn" else data.flat[:1]
    single = data.images[0, ..., 0] if kind == "cnn" else data.flat[0]
    calls = {"nn predict": lambda: model.predict(batch), "nn model(data)": lambda: model(data=single)}
    if HAS_TORCH:
        import torch

        network = torch.nn.Sequential(torch_mirror(model), torch.nn.Softmax(dim=1)).eval()
        image = torch_images(kind, Data(data.images[:1], data.labels[:1], data.flat[:1], data.source))

        def torch_call():
            with torch.no_grad():
                return network(image).numpy()

        calls["torch"] = torch_call
    return calls


def sklearn_dtype(data: Data) -> str | None:
    """The dtype scikit-learn's MLP computes in for our float32 input (it may promote to float64)."""
    if not HAS_SKLEARN:
        return None
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings(), contextlib.suppress(ValueError):
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = MLPClassifier(hidden_layer_sizes=(2,), max_iter=1).fit(data.flat[:32], data.labels[:32])
        return str(classifier.coefs_[0].dtype)
    return None
