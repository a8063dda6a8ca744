"""Teach's sessions: a user's classes and examples, their training and the model it made; the limits on all of it.

A ``TeachSession`` lives in the app's ``SessionStore`` (``app.sessions``) under a random id; a request changes it
holding the store's lock for that session. A training holds that lock only to copy the examples and, at the end,
to install the model: in between it runs without it (``Teacher.train``), on the request's worker thread and one
of ``MAX_CONCURRENT_TRAININGS`` server-wide slots, so the session still answers (predictions with the previous
model, new examples) and other users' predictions never wait for it. The learning itself is ``app.transfer``'s.

Every refusal is a ``TeachRefusal`` carrying its HTTP status (4xx) and a message naming the limit, by the name
of the constant below. No FastAPI here: ``app.teach`` holds the routes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._validation import first_line, shown
from ..serving import ServedModel
from . import transfer
from .inputs import png_data_url
from .sessions import SessionStore, SessionStoreFull

MAX_TEACH_SESSIONS = 8  # Teach sessions alive at once, server-wide (each holds up to ~15 MB of features)
IDLE_SECONDS = 30 * 60.0  # a session unused this long is forgotten with its examples and model
MAX_CLASSES = 10
MAX_EXAMPLES_PER_CLASS = 40
MIN_EXAMPLES_PER_CLASS = 2  # for a training; augmentation makes 2 x (1 + AUGMENTED_COPIES) samples of them
MIN_CLASSES = 2
MAX_LABEL_CHARS = 40
MAX_EXAMPLE_POINTS = 5_000  # points of one drawn example (a busy doodle has ~2,000)
MAX_EXAMPLE_IMAGE_BYTES = 512 * 1024  # the data URL of one uploaded example
MAX_TRAINING_SECONDS = 30.0  # a training stops after the epoch that passes it, keeping the head trained so far
MAX_CONCURRENT_TRAININGS = 1  # trainings running at once on the whole server (one per session at most)
TRAINING_QUEUE_SECONDS = 20.0  # how long a training waits for a free slot before it is refused
DEFAULT_BASE = "doodles"
BAD_REQUEST, NOT_FOUND, CONFLICT, TOO_LARGE, UNPROCESSABLE, TOO_MANY = 400, 404, 409, 413, 422, 429
LIMITS = {"MAX_TEACH_SESSIONS": MAX_TEACH_SESSIONS, "IDLE_SECONDS": IDLE_SECONDS, "MAX_CLASSES": MAX_CLASSES,
          "MAX_EXAMPLES_PER_CLASS": MAX_EXAMPLES_PER_CLASS, "MIN_EXAMPLES_PER_CLASS": MIN_EXAMPLES_PER_CLASS,
          "MIN_CLASSES": MIN_CLASSES, "MAX_LABEL_CHARS": MAX_LABEL_CHARS, "MAX_EXAMPLE_POINTS": MAX_EXAMPLE_POINTS,
          "MAX_EXAMPLE_IMAGE_BYTES": MAX_EXAMPLE_IMAGE_BYTES, "MAX_TRAINING_SECONDS": MAX_TRAINING_SECONDS,
          "MAX_CONCURRENT_TRAININGS": MAX_CONCURRENT_TRAININGS}  # what GET /api/teach/{id} tells the page


class TeachRefusal(Exception):
    """A Teach request refused: ``status`` is the HTTP status (4xx), ``message`` says why and which limit."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_label(label: object) -> str:
    """A class name: text of 1 to MAX_LABEL_CHARS printable characters, spaces at its ends removed."""
    cleaned = label.strip() if isinstance(label, str) else label
    if not isinstance(cleaned, str) or not cleaned or len(cleaned) > MAX_LABEL_CHARS or not cleaned.isprintable():
        raise TeachRefusal(UNPROCESSABLE, f"`label` must be a class name of 1 to {MAX_LABEL_CHARS} printable "
                                          f"characters (MAX_LABEL_CHARS). Received: {shown(label)}")
    return cleaned


class Progress:
    """The state of a session's latest training, as the events stream sends it; thread-safe, versioned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0
        self.run = 0  # trainings started in this session
        self.state: dict[str, object] = {"phase": "idle"}

    def update(self, phase: str, *, start: bool = False, **values: object) -> None:
        values = {key: None if isinstance(value, float) and not math.isfinite(value) else value
                  for key, value in values.items()}  # JSON has no NaN
        with self._lock:
            self.run += start
            self.version += 1
            self.state = {"phase": phase, "run": self.run, **({} if start else self.state_values()), **values}

    def state_values(self) -> dict[str, object]:
        return {key: value for key, value in self.state.items() if key not in ("phase", "run")}

    def snapshot(self) -> tuple[int, int, dict[str, object]]:
        """(version, run, state): the version grows with every update, the run with every training."""
        with self._lock:
            return self.version, self.run, dict(self.state)


@dataclass
class Example:
    id: int
    label: str
    bitmap: np.ndarray  # (28, 28) uint8, as the base sees it
    features: np.ndarray  # (1 + AUGMENTED_COPIES, feature_size), computed once when added

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "thumbnail": png_data_url(self.bitmap)}


@dataclass
class Trained:
    """A session's model: the served form predictions use, its labels and how its training went."""

    served: ServedModel
    labels: list[str]
    accuracy: float
    seconds: float
    epochs: int
    stopped_early: bool
    examples: int  # examples it was trained on
    version: int  # the session's ``changes`` when its examples were copied

    def describe(self, current_changes: int) -> dict[str, object]:
        return {"labels": self.labels, "accuracy": self.accuracy, "seconds": self.seconds, "epochs": self.epochs,
                "stopped_early": self.stopped_early, "examples": self.examples,
                "stale": current_changes != self.version}


@dataclass
class TeachSession:
    """One user's classes (in the order they were named) and examples, and the model last trained on them."""

    base_name: str
    base: transfer.FeatureBase
    classes: dict[str, list[Example]] = field(default_factory=dict)
    trained: Trained | None = None
    training: bool = False
    changes: int = 0  # grows with every example or class added or removed
    next_id: int = 1
    progress: Progress = field(default_factory=Progress)

    def add_example(self, label: str, bitmap: np.ndarray) -> Example:
        label = check_label(label)
        if label not in self.classes and len(self.classes) >= MAX_CLASSES:
            raise TeachRefusal(CONFLICT, f"This session already has {MAX_CLASSES} classes (MAX_CLASSES): delete one "
                                         f"before adding {label!r}")
        if len(self.classes.get(label, ())) >= MAX_EXAMPLES_PER_CLASS:
            raise TeachRefusal(CONFLICT, f"Class {label!r} already has {MAX_EXAMPLES_PER_CLASS} examples "
                                         "(MAX_EXAMPLES_PER_CLASS): delete one before adding another")
        example = Example(self.next_id, label, bitmap, self.base.features(bitmap[None])[0])
        self.next_id += 1
        self.classes.setdefault(label, []).append(example)
        self._changed(new_class=len(self.classes[label]) == 1)
        return example

    def delete_example(self, example_id: int) -> None:
        for examples in self.classes.values():
            for index, example in enumerate(examples):
                if example.id == example_id:
                    del examples[index]
                    self._changed()
                    return
        raise TeachRefusal(NOT_FOUND, f"This session has no example {example_id}")

    def delete_class(self, label: str) -> None:
        if label not in self.classes:
            raise TeachRefusal(NOT_FOUND, f"This session has no class {shown(label)}. Its classes: "
                                          f"{', '.join(self.classes) or 'none yet'}")
        del self.classes[label]
        self._changed(new_class=True)

    def _changed(self, new_class: bool = False) -> None:
        """Count the change; a model whose labels are no longer exactly the classes is dropped."""
        self.changes += 1
        if new_class and self.trained is not None and self.trained.labels != list(self.classes):
            self.trained = None

    def training_set(self) -> tuple[list[str], list[np.ndarray], list[int]]:
        """The labels, every example's features and class index, checked against MIN_CLASSES and
        MIN_EXAMPLES_PER_CLASS."""
        if len(self.classes) < MIN_CLASSES:
            raise TeachRefusal(UNPROCESSABLE, f"Training needs at least {MIN_CLASSES} classes (MIN_CLASSES). This "
                                              f"session has {len(self.classes)}")
        short = [label for label, examples in self.classes.items() if len(examples) < MIN_EXAMPLES_PER_CLASS]
        if short:
            raise TeachRefusal(UNPROCESSABLE, f"Every class needs at least {MIN_EXAMPLES_PER_CLASS} examples "
                                              f"(MIN_EXAMPLES_PER_CLASS) to train. Too few: {shown(short)}")
        labels = list(self.classes)
        examples = [(index, example) for index, label in enumerate(labels) for example in self.classes[label]]
        return labels, [example.features for _, example in examples], [index for index, _ in examples]

    def describe(self, session_id: str) -> dict[str, object]:
        return {"session": session_id, "base": self.base_name, "training": self.training,
                "classes": [{"label": label, "count": len(examples),
                             "examples": [example.describe() for example in examples]}
                            for label, examples in self.classes.items()],
                "trained": None if self.trained is None else self.trained.describe(self.changes),
                "limits": dict(LIMITS)}

    def model(self) -> Trained:
        if self.trained is None:
            raise TeachRefusal(CONFLICT, "This session has no model for its current classes yet: add examples and "
                                         "train it first")
        return self.trained


class Teacher:
    """What the server holds for Teach: the session store, the bases (made on first use) and the training slots."""

    def __init__(self, served: Mapping[str, ServedModel]) -> None:
        self.served = served
        self.store: SessionStore[TeachSession] = SessionStore("teach", MAX_TEACH_SESSIONS, IDLE_SECONDS)
        self.training_slots = threading.BoundedSemaphore(MAX_CONCURRENT_TRAININGS)
        self._bases: dict[str, transfer.FeatureBase] = {}
        self._bases_lock = threading.Lock()

    def bases(self) -> list[str]:
        """The served models that can be taught: those with a feature layer (see ``transfer.feature_cut``)."""
        names = []
        for name, served in self.served.items():
            try:
                transfer.feature_cut(served.model)
            except transfer.NotTeachableError:
                continue
            names.append(name)
        return names

    def base(self, name: str) -> transfer.FeatureBase:
        with self._bases_lock:
            if name not in self._bases:
                known = self.bases()
                if name not in known:
                    raise TeachRefusal(UNPROCESSABLE, f"Unknown base model {shown(name)}. Expected one of: "
                                                      f"{', '.join(known) or 'none (no model has a feature layer)'}")
                self._bases[name] = transfer.FeatureBase(self.served[name])
            return self._bases[name]

    def create(self, base_name: str = DEFAULT_BASE) -> str:
        session = TeachSession(base_name, self.base(base_name))
        try:
            return self.store.create(session)
        except SessionStoreFull:
            raise TeachRefusal(TOO_MANY, f"The server already holds {MAX_TEACH_SESSIONS} Teach sessions "
                                         "(MAX_TEACH_SESSIONS); try again when one has expired") from None

    def train(self, session_id: str) -> Trained:
        """Train a new head on the session's examples and install the model; blocks until it is done."""
        with self.store.lock(session_id) as session:
            if session.training:
                raise TeachRefusal(CONFLICT, "This session is already training; wait for it to finish")
            labels, features, targets = session.training_set()
            version = session.changes
            session.training = True
        try:
            if not self.training_slots.acquire(timeout=TRAINING_QUEUE_SECONDS):
                raise TeachRefusal(TOO_MANY, f"The server is already running {MAX_CONCURRENT_TRAININGS} training(s) "
                                             f"(MAX_CONCURRENT_TRAININGS) and none ended within "
                                             f"{TRAINING_QUEUE_SECONDS:g} s; try again")
            try:
                trained = self._run(session, labels, features, targets, version)
            except (ValueError, ArithmeticError) as error:  # the loss became NaN: a base with extreme features
                raise TeachRefusal(UNPROCESSABLE, f"The training failed: {first_line(error)}") from None
            finally:
                self.training_slots.release()
        except BaseException as error:
            session.progress.update("failed", error=str(getattr(error, "message", error)))
            raise
        finally:
            session.training = False
        with self.store.lock(session_id) as current:
            if trained.labels != list(current.classes):
                raise TeachRefusal(CONFLICT, "The classes changed while the session trained: train it again")
            if current.trained is None or current.trained.version <= version:
                current.trained = trained
        return trained

    @staticmethod
    def _run(session: TeachSession, labels: list[str], features: list[np.ndarray], targets: list[int],
             version: int) -> Trained:
        started = time.monotonic()
        session.progress.update("training", start=True, epoch=0, epochs=transfer.EPOCHS, classes=labels,
                                examples=len(targets))
        head = session.base.train_head(features, targets, len(labels), deadline=started + MAX_TRAINING_SECONDS,
                                       report=lambda values: session.progress.update("training", **values))
        model = session.base.assemble(head.head, labels)
        base = session.base.served
        served = ServedModel(transfer.TAUGHT_MODEL_NAME, base.path, model, labels, base.style, base.budget)
        seconds = time.monotonic() - started
        session.progress.update("done", accuracy=head.accuracy, seconds=seconds, stopped_early=head.stopped_early)
        return Trained(served, labels, head.accuracy, seconds, head.epochs, head.stopped_early, len(targets),
                       version)
