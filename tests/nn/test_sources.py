"""fit and evaluate on a SampleSource (batches read on demand), and the seeded on-demand permutation behind it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from NeuralNetworks._permutation import RandomPermutation, permute
from NeuralNetworks.nn import callbacks, layers, models, sources, training


class ArraySource:
    """A SampleSource over arrays that records what was gathered, and from which thread."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y
        self.sample_shape = x.shape[1:]
        self.gathered: list[np.ndarray] = []
        self.threads: set[str] = set()

    def __len__(self) -> int:
        return len(self.x)

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert np.all(np.diff(index) > 0), "gather receives sorted positions"
        self.gathered.append(index)
        self.threads.add(threading.current_thread().name)
        return self.x[index], self.y[index]


def data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 4, 4, 1), dtype=np.uint8)
    return x, (x.reshape(n, -1).mean(axis=1) > 127).astype(np.int64) + 2 * (x[:, 0, 0, 0] > 127)


def small_model(seed: int = 0) -> models.Sequential:
    model = models.Sequential(seed=seed)
    model.add(layers.Rescaling(1 / 255, input_shape=(4, 4, 1)))
    model.add(layers.Flatten())
    model.add(layers.Dense(8, activation="relu"))
    model.add(layers.Dense(4, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 17, 64, 65, 1000, 4099])
def test_random_permutation_is_a_bijection(n):
    order = RandomPermutation(n, np.random.default_rng(n))
    assert sorted(order[0:n].tolist()) == list(range(n))
    assert np.array_equal(order[np.arange(n)], order[0:n])


def test_random_permutation_is_seeded_and_looks_random():
    n = 100_000
    first, again = (RandomPermutation(n, np.random.default_rng(7))[0:n] for _ in range(2))
    other = RandomPermutation(n, np.random.default_rng(8))[0:n]
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert abs(np.corrcoef(np.arange(n), first)[0, 1]) < 0.02  # no trace of the original order
    assert abs(np.corrcoef(first[:-1], first[1:])[0, 1]) < 0.02  # neighbours are unrelated
    counts = np.bincount(first[: n // 10] * 10 // n, minlength=10)  # the first tenth lands evenly
    assert counts.min() > 0.8 * n / 100 and counts.max() < 1.2 * n / 100


def test_permute_with_a_size_and_keys_per_element_equals_one_call_per_domain():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 500, 40)
    keys = rng.integers(0, 2**63, (4, 40), dtype=np.uint64)
    positions = (rng.random(40) * sizes).astype(np.int64)
    together = permute(positions, sizes, keys)
    alone = [permute(positions[i:i + 1], sizes[i], keys[:, i])[0] for i in range(40)]
    assert together.tolist() == alone and np.all(together < sizes)


def test_an_index_outside_the_permutation_is_refused():
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        RandomPermutation(5, np.random.default_rng(0))[np.array([5])]


def test_fit_on_a_source_in_order_equals_fit_on_the_arrays():
    x, y = data()
    x_val, y_val = data(50, seed=1)
    on_arrays, on_source = small_model(), small_model()
    expected = on_arrays.fit(x, y, epochs=2, batch_size=16, shuffle=False, validation_data=(x_val, y_val), verbose=0)
    history = on_source.fit(ArraySource(x, y), epochs=2, batch_size=16, shuffle=False,
                            validation_data=ArraySource(x_val, y_val), verbose=0)
    np.testing.assert_array_equal(on_source.flat.params, on_arrays.flat.params)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history.history[key], expected.history[key], rtol=1e-6)
    assert on_source.evaluate(ArraySource(x_val, y_val)) == pytest.approx(on_arrays.evaluate(x_val, y_val))


def test_a_shuffled_source_sees_every_sample_once_per_epoch_in_new_batches():
    x, y = data(100)
    x[:, 0, 0, 0] = np.arange(100)  # each sample says which it is
    batches = []

    class Recording(training.Trainer):
        def train_step(self, x, y):
            batches.append(sorted(x[:, 0, 0, 0].tolist()))
            return super().train_step(x, y)

    Recording(small_model()).fit(ArraySource(x, y), epochs=2, batch_size=10, verbose=0)
    epochs = [batches[:10], batches[10:]]
    assert all(sorted(sum(epoch, [])) == list(range(100)) for epoch in epochs)
    assert epochs[0] != epochs[1] and epochs[0][0] != list(range(10))


def test_batches_are_read_ahead_in_a_background_thread_but_never_far_ahead():
    x, y = data(20_000)
    source = ArraySource(x, y)
    consumed = []

    class Watch(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            consumed.append(sum(len(index) for index in source.gathered))

    small_model().fit(source, epochs=1, batch_size=8, callbacks=[Watch()], verbose=0)
    assert source.threads and all(name.startswith("prefetch") for name in source.threads)
    ahead = max(read - 8 * (batch + 1) for batch, read in enumerate(consumed))
    assert 0 < ahead <= (sources.PREFETCH_CHUNKS + 1) * sources.READ_AHEAD_SAMPLES


def test_a_failing_read_surfaces_in_fit():
    class Broken(ArraySource):
        def gather(self, index):
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        small_model().fit(Broken(*data()), epochs=1, verbose=0)


@pytest.mark.parametrize("call, message", [
    (lambda m, s: m.fit(s, np.zeros(200), verbose=0), "reads the labels from the source"),
    (lambda m, s: m.fit(s, validation_split=0.1, verbose=0), "validation_split needs arrays"),
    (lambda m, s: m.fit(s, validation_data=[1, 2, 3], verbose=0), "tuple .* or a SampleSource"),
    (lambda m, s: m.fit(np.zeros((3, 4, 4, 1)), verbose=0), r"needs the labels `y`"),
    (lambda m, s: m.evaluate(np.zeros((3, 4, 4, 1))), r"needs the labels `y`"),
    (lambda m, s: m.fit(ArraySource(np.zeros((3, 5, 5, 1)), np.zeros(3, int)), verbose=0), r"samples of shape"),
    (lambda m, s: m.fit(ArraySource(np.zeros((0, 4, 4, 1)), np.zeros(0, int)), verbose=0), "no samples"),
])
def test_misuse_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call(small_model(), ArraySource(*data()))


def test_predict_refuses_a_source_and_says_what_to_do():
    with pytest.raises(TypeError, match=r"predict on its batches"):
        small_model().predict(ArraySource(*data()))


def test_labels_from_a_source_are_checked_like_arrays():
    x, _ = data()
    with pytest.raises(ValueError, match=r"labels outside \[0, 3\]"):
        small_model().fit(ArraySource(x, np.full(len(x), 7)), epochs=1, verbose=0)
