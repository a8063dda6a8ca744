"""Clear drawings sent the way the page sends them get sensible answers from models trained on the real data."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from NeuralNetworks.app import create_app, registry
from NeuralNetworks.nn import layers, models

TRAIN_PER_CLASS = 800
MNIST_TRAIN = 6000


def ellipse(rx: float, ry: float, points: int = 60) -> list[list[float]]:
    return [[200 + rx * math.cos(a), 200 + ry * math.sin(a)] for a in np.linspace(0, 2 * math.pi, points)]


# Strokes in screen pixels (y down), as the page captures them.
DRAWINGS = {
    "doodles": [
        ({"apple"}, [ellipse(120, 120)]),  # a clear circle: the round class
        ({"diamond"}, [[[200, 60], [280, 200], [200, 340], [120, 200], [200, 60]]]),
        ({"house"}, [[[100, 340], [100, 180], [200, 80], [300, 180], [300, 340], [100, 340]]]),
    ],
    "digits": [
        ({"1"}, [[[200, 80], [200, 320]]]),
        ({"1"}, [[[165, 120], [205, 80], [205, 320]]]),
        ({"0"}, [ellipse(70, 120)]),
    ],
}


def train(x: np.ndarray, y: np.ndarray, labels: list[str], path):
    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=(28, 28)))
    model.add(layers.Flatten())
    model.add(layers.Dense(96, activation="relu"))
    model.add(layers.Dense(len(labels), activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, batch_size=64, verbose=0)
    return model.save(path, labels=labels)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """Train the two small models on first use only; later tests of the module reuse the files."""
    files_by_data: dict = {}

    def model_files(quickdraw_dir, mnist_dir) -> dict:
        if not files_by_data:
            folder = tmp_path_factory.mktemp("trained")
            files = sorted(quickdraw_dir.glob("*.npy"))
            x = np.concatenate([np.load(f, allow_pickle=False)[:TRAIN_PER_CLASS].reshape(-1, 28, 28) for f in files])
            y = np.repeat(np.arange(len(files)), TRAIN_PER_CLASS)
            digits = np.frombuffer(gzip.open(mnist_dir / "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
            labels = np.frombuffer(gzip.open(mnist_dir / "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
            files_by_data["doodles"] = train(x, y, [f.stem for f in files], folder / "doodles.npz")
            files_by_data["digits"] = train(digits.reshape(-1, 28, 28)[:MNIST_TRAIN], labels[:MNIST_TRAIN],
                                            [str(d) for d in range(10)], folder / "digits.npz")
        return files_by_data

    return model_files


@pytest.fixture(params=["trained here", "shipped"])
def trained_client(request, trained_once, test_client_class):
    """The app serving doodle and digit models: small ones trained on the real data here, or the shipped ones."""
    if request.param == "shipped":
        if not all(path.is_file() for path in registry.SHIPPED_MODELS.values()):
            pytest.skip("the shipped pretrained models are not there yet")
        paths = dict(registry.SHIPPED_MODELS)
    else:
        paths = trained_once(request.getfixturevalue("quickdraw_dir"), request.getfixturevalue("mnist_dir"))
    with test_client_class(create_app(paths)) as client:
        yield client


@pytest.mark.parametrize(("model", "expected", "strokes"),
                         [(model, expected, strokes) for model, cases in DRAWINGS.items()
                          for expected, strokes in cases])
def test_clear_drawings_get_sensible_predictions(trained_client, model, expected, strokes):
    response = trained_client.post("/api/predict", json={"model": model, "strokes": strokes})
    assert response.status_code == 200, response.text
    assert response.json()["label"] in expected, response.json()["scores"]
