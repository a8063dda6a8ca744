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

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .nn import layers, losses, models, optimizers

MAX_SEED = 2**31 - 1
FLOAT_DTYPES = (np.float64, np.float32)  # float32 X is kept, anything else becomes float64
MODEL_FILE = "model.npz"

ModelBuilder = Callable[[int, int, int], models.Model]


class _NeuralNetworkEstimator(BaseEstimator):
    """What the classifier and the regressor share: the network, its training and its pickling."""

    _output_activation = "linear"

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,), activation: str = "relu", *,
                 model: ModelBuilder | None = None, optimizer: str = "adam", learning_rate: float = 1e-3,
                 epochs: int = 200, batch_size: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0) -> None:
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

    def _network(self, n_features: int, n_outputs: int, seed: int, dtype: np.dtype) -> models.Model:
        if self.model is not None:
            network = self.model(n_features, n_outputs, seed)
            if not isinstance(network, models.Model):
                raise TypeError(f"`model` must return a Sequential or a functional Model. "
                                f"Received: {type(network).__name__}")
            if not network.built:
                network.build((n_features,))
            if network.output_shape != (n_outputs,):
                raise ValueError(f"`model` must return a network with {n_outputs} outputs for this data. "
                                 f"Received output shape {network.output_shape}")
            return network
        sizes = (self.hidden_layer_sizes,) if np.isscalar(self.hidden_layer_sizes) else self.hidden_layer_sizes
        network = models.Sequential(seed=seed, dtype=str(dtype))
        for index, units in enumerate([*sizes, n_outputs]):
            is_output = index == len(sizes)
            options = {"input_shape": (n_features,)} if index == 0 else {}
            network.add(layers.Dense(units, activation=self._output_activation if is_output else self.activation,
                                     **options))
        return network

    def _train(self, x: np.ndarray, y: np.ndarray, n_outputs: int, loss: losses.Loss) -> None:
        seed = int(check_random_state(self.random_state).randint(MAX_SEED))
        self.model_ = self._network(x.shape[1], n_outputs, seed, x.dtype)
        self.model_.compile(optimizer=optimizers.get(self.optimizer, learning_rate=self.learning_rate), loss=loss)
        history = self.model_.fit(x, y, epochs=self.epochs, batch_size=min(self.batch_size, len(x)),
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
