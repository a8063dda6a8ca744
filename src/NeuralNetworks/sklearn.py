"""scikit-learn estimators trained with this library: ``NeuralNetworkClassifier`` and ``NeuralNetworkRegressor``.

They follow scikit-learn's estimator contract (``fit``/``predict``/``score``, ``get_params``/``set_params``,
``classes_``, ``n_features_in_``, a seeded ``random_state``), so they drop into ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``::

    from sklearn.model_selection import cross_val_score
    from NeuralNetworks.sklearn import NeuralNetworkClassifier
    cross_val_score(NeuralNetworkClassifier(hidden_layer_sizes=(64,), random_state=0), X, y, cv=5)

The network is an MLP of ``hidden_layer_sizes`` by default, or whatever ``model(n_features_in, n_outputs, seed)``
returns (a CNN with a Reshape first, say). Like scikit-learn's own MLP, it computes in float32 when X is
float32 and in float64 otherwise. Needs the sklearn extra: ``pip install "neural-networks[sklearn]"``.
"""

from __future__ import annotations

import numbers
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .budget import DEFAULT_BUDGET, Budget, bytes_text
from .nn import layers, losses, models, optimizers

MAX_SEED = 2**31 - 1
FLOAT_DTYPES = (np.float64, np.float32)  # float32 X is kept, anything else becomes float64
MODEL_FILE = "model.npz"
# Arrays per weight while training: the weights, their gradients, the optimizer's work array and one for the
# initializers' and layers' temporaries (the optimizer's slots come on top); and per value of a layer's output in
# a batch: the output, what backward keeps, its gradient and a work array. An upper bound of tracemalloc's peak
# (measured 0.6-0.8x of the estimate; tests/hostile/test_estimators.py).
ARRAYS_PER_WEIGHT = 4
ARRAYS_PER_ACTIVATION = 4

ModelBuilder = Callable[[int, int, int], models.Model]


class _NeuralNetworkEstimator(BaseEstimator):
    """What the classifier and the regressor share: the network, its training and its pickling."""

    _output_activation = "linear"

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,), activation: str = "relu", *,
                 model: ModelBuilder | None = None, optimizer: str = "adam", learning_rate: float = 1e-3,
                 epochs: int = 200, batch_size: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0,
                 budget: Budget | None = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.model = model
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.budget = budget

    def _hidden_sizes(self) -> tuple[int, ...]:
        """``hidden_layer_sizes`` as a tuple of positive ints, or a TypeError/ValueError naming the parameter."""
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else sizes
        if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not all(
                isinstance(units, numbers.Integral) and not isinstance(units, bool) for units in sizes):
            raise TypeError(f"`hidden_layer_sizes` must be a tuple of positive integers, e.g. (100,) or (64, 32). "
                            f"Received: hidden_layer_sizes={self.hidden_layer_sizes!r:.80}")
        if not all(units > 0 for units in sizes):
            raise ValueError(f"`hidden_layer_sizes` must hold positive integers. "
                             f"Received: hidden_layer_sizes={self.hidden_layer_sizes!r:.80}")
        return tuple(int(units) for units in sizes)

    def _check_budget(self, widths: Sequence[int], weights: int, batch_size: int, dtype: np.dtype) -> None:
        """Refuse, before allocating, a network whose training would take more than the budget: its weights
        (``max_parameters``), one sample's values (``max_sample_elements``), and the bytes of the weights, their
        gradients and optimizer state plus one batch's activations (``max_model_bytes``)."""
        budget = self.budget or DEFAULT_BUDGET
        if weights > budget.max_parameters:
            raise ValueError(f"{type(self).__name__}: this network has {weights:,} weights, more than the budget's "
                             f"max_parameters ({budget.max_parameters:,}); use smaller hidden_layer_sizes or pass "
                             "budget=Budget(max_parameters=...)")
        if sum(widths) > budget.max_sample_elements:
            raise ValueError(f"{type(self).__name__}: the layers' outputs hold {sum(widths):,} values per sample, "
                             f"more than the budget's max_sample_elements ({budget.max_sample_elements:,})")
        slots = len(optimizers.get(self.optimizer).slot_names) if isinstance(self.optimizer, str) else 2
        needed = dtype.itemsize * ((ARRAYS_PER_WEIGHT + slots) * weights +
                                   ARRAYS_PER_ACTIVATION * batch_size * sum(widths))
        if needed > budget.max_model_bytes:
            raise ValueError(f"{type(self).__name__}: training this network would take about {bytes_text(needed)} "
                             f"(weights, gradients, optimizer state and a batch of {batch_size}), more than the "
                             f"budget's max_model_bytes ({bytes_text(budget.max_model_bytes)}); use smaller "
                             "hidden_layer_sizes or batch_size, or pass budget=Budget(max_model_bytes=...)")

    def _network(self, n_features: int, n_outputs: int, seed: int, dtype: np.dtype,
                 batch_size: int) -> models.Model:
        if self.model is not None:
            if not callable(self.model):
                raise TypeError(f"`model` must be a callable model(n_features_in, n_outputs, seed) returning a "
                                f"Sequential, or None. Received: model={self.model!r:.80}")
            network = self.model(n_features, n_outputs, seed)
            if not isinstance(network, models.Model):
                raise TypeError(f"`model` must return a Sequential or a functional Model. "
                                f"Received: {type(network).__name__}")
            if not network.built:
                network.build((n_features,))
            if network.output_shape != (n_outputs,):
                raise ValueError(f"`model` must return a network with {n_outputs} outputs for this data. "
                                 f"Received output shape {network.output_shape}")
            widths = [int(np.prod(layer.output_shape)) for layer in network.layers]
            self._check_budget([n_features, *widths], network.count_params(), batch_size, network.dtype)
            return network
        sizes = self._hidden_sizes()
        widths = [n_features, *sizes, n_outputs]
        weights = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths, widths[1:], strict=False))
        self._check_budget(widths, weights, batch_size, dtype)
        network = models.Sequential(seed=seed, dtype=str(dtype))
        for index, units in enumerate([*sizes, n_outputs]):
            is_output = index == len(sizes)
            options = {"input_shape": (n_features,)} if index == 0 else {}
            network.add(layers.Dense(units, activation=self._output_activation if is_output else self.activation,
                                     **options))
        return network

    def _train(self, x: np.ndarray, y: np.ndarray, n_outputs: int, loss: losses.Loss) -> None:
        seed = int(check_random_state(self.random_state).randint(MAX_SEED))
        batch_size = min(self.batch_size, len(x)) if isinstance(self.batch_size, numbers.Integral) else \
            self.batch_size  # a bad batch_size is fit's to name
        network = self._network(x.shape[1], n_outputs, seed, x.dtype,
                                batch_size if isinstance(batch_size, numbers.Integral) else 1)
        self.model_ = network
        self.model_.compile(optimizer=optimizers.get(self.optimizer, learning_rate=self.learning_rate), loss=loss)
        history = self.model_.fit(x, y, epochs=self.epochs, batch_size=batch_size,
                                  shuffle=self.shuffle, verbose=self.verbose)
        self.loss_curve_ = list(history.history["loss"])
        self.n_iter_ = len(self.loss_curve_)

    def _outputs(self, x: object) -> np.ndarray:
        check_is_fitted(self, "model_")
        x = validate_data(self, x, reset=False, dtype=FLOAT_DTYPES)
        return self.model_.predict(x.astype(self.model_.dtype, copy=False))

    # The network is pickled as its model file (an .npz, written by the library and read without pickle):
    # a live Sequential may hold handles to the BLAS libraries, which cannot be pickled.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: the estimator keeps its live network
        if "model_" in state:
            with tempfile.TemporaryDirectory() as folder:
                state["model_"] = state["model_"].save(Path(folder) / MODEL_FILE).read_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("model_"), bytes):
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / MODEL_FILE
                path.write_bytes(state["model_"])
                state["model_"] = models.load(path)
        super().__setstate__(state)


class NeuralNetworkClassifier(ClassifierMixin, _NeuralNetworkEstimator):
    """A neural-network classifier: softmax over the classes, trained with sparse categorical cross-entropy.

    Parameters:
        hidden_layer_sizes: units of each hidden Dense layer (ignored when ``model`` is given).
        activation: the hidden layers' activation ("relu", "tanh", "sigmoid", "leaky_relu", "linear").
        model: optional ``model(n_features_in, n_outputs, seed) -> Model`` (Sequential or functional) whose last
            layer is a softmax over ``n_outputs`` classes; it replaces the MLP.
        optimizer, learning_rate: the optimizer's name ("adam", "sgd", "rmsprop", ...) and step size.
        epochs, batch_size, shuffle: the training loop (``batch_size`` is capped at the number of samples).
        random_state: int for reproducible weights and shuffling, a RandomState, or None.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        budget: the ``Budget`` (default ``DEFAULT_BUDGET``) that bounds what ``fit`` may allocate for the network:
            weights, optimizer state and one batch's activations are refused by name before they exist.

    Attributes: ``classes_``, ``n_features_in_`` (``feature_names_in_`` for named columns), ``model_`` (the
    trained Sequential), ``loss_curve_`` (training loss per epoch), ``n_iter_`` (epochs run).
    """

    _output_activation = "softmax"

    def fit(self, X: object, y: object) -> NeuralNetworkClassifier:
        """Train a new network on ``X`` (n_samples, n_features) and class labels ``y`` of any type."""
        x, y = validate_data(self, X, y, dtype=FLOAT_DTYPES)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes to learn from. "
                             f"Received 1 class: {self.classes_[0]!r}")
        self._train(x, codes, len(self.classes_), losses.SparseCategoricalCrossentropy())
        return self

    def predict_proba(self, X: object) -> np.ndarray:
        """Probability of each class in ``classes_`` order, (n_samples, n_classes)."""
        return self._outputs(X)

    def predict(self, X: object) -> np.ndarray:
        """The most probable class of each sample."""
        probabilities = self.predict_proba(X)  # first: it checks that the classifier is fitted
        return self.classes_[np.argmax(probabilities, axis=1)]


class NeuralNetworkRegressor(RegressorMixin, _NeuralNetworkEstimator):
    """A neural-network regressor: linear outputs trained with mean squared error; ``y`` may have several
    columns. Parameters as ``NeuralNetworkClassifier``'s, except that a ``model`` ends in ``n_outputs`` linear
    units. Attributes: ``n_features_in_``, ``model_``, ``loss_curve_``, ``n_iter_``.
    """

    def fit(self, X: object, y: object) -> NeuralNetworkRegressor:
        """Train a new network on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or (n_samples, k)."""
        x, y = validate_data(self, X, y, dtype=FLOAT_DTYPES, multi_output=True, y_numeric=True)
        self._single_output = y.ndim == 1
        targets = y.reshape(len(y), -1).astype(x.dtype, copy=False)
        self._train(x, targets, targets.shape[1], losses.MeanSquaredError())
        return self

    def predict(self, X: object) -> np.ndarray:
        """Predicted targets, (n_samples,) for a one-column ``y`` else (n_samples, k)."""
        outputs = self._outputs(X)
        return outputs[:, 0] if self._single_output else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
