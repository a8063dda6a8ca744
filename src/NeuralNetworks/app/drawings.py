"""What /api/predict and Teach share: the drawing a request carries, the prediction answered, the error body, and
turning one into the other (``bitmap``, ``predict``) with refusals as ``InputProblem`` (a 4xx the app answers as
``{"error": ...}``).

A module of its own because ``server`` includes Teach's router: Teach cannot import ``server``.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field, StrictFloat

from ..data.images import EmptyDrawingError
from ..serving import DRAWING_KINDS, ServedModel
from .inputs import decode_data_url

Point = tuple[StrictFloat, StrictFloat]  # numbers only: true or "3" is not a coordinate


class Drawing(BaseModel):
    """One drawing: exactly one of ``strokes``, ``image`` or ``pixels``."""

    strokes: list[list[Point]] | None = Field(None, description="Strokes of [x, y] points, y down, any unit")
    image: str | None = Field(None, description="A PNG/JPEG data URL of a canvas or an upload")
    pixels: list[list[StrictFloat]] | None = Field(None, description="A 28x28 array, 0 background to 255 ink")


class PredictRequest(Drawing):
    """One drawing to classify: exactly one of ``strokes``, ``image`` or ``pixels``."""

    model: str | None = Field(None, description="Model name from /api/models; the first model if omitted")


class ErrorMessage(BaseModel):
    """Every error the app answers: one line saying what was wrong and what was expected."""

    error: str


class Score(BaseModel):
    label: str
    probability: float


class Prediction(BaseModel):
    model: str
    style: str
    label: str
    scores: list[Score]
    preview: list[list[int]] | list[list[list[int]]] = Field(
        description="The image the model saw: 28x28 (white ink on black), or height x width (x 3 for colour)")


class InputProblem(Exception):
    """A request the app cannot answer with a prediction: carries the HTTP status and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bitmap(drawing: Drawing, served: ServedModel) -> np.ndarray:
    """The bitmap ``served`` sees for ``drawing`` (an image decoded within ``served.budget``): an empty drawing
    is a 422, unusable input a 400, anything but exactly one kind of drawing a 422."""
    given = [kind for kind in DRAWING_KINDS if getattr(drawing, kind) is not None]
    if len(given) != 1:
        raise InputProblem(422, "Send exactly one of `strokes`, `image` or `pixels`. "
                                f"Received: {', '.join(given) or 'none of them'}")
    try:
        found = {given[0]: getattr(drawing, given[0])}
        if "image" in found:
            found["image"] = decode_data_url(found["image"], served.budget)  # sizes checked before decoding
        return served.preprocess(**found)
    except EmptyDrawingError as error:
        raise InputProblem(422, str(error)) from None
    except (ValueError, TypeError) as error:
        raise InputProblem(400, str(error)) from None


def predict(served: ServedModel, sample: np.ndarray, who: str | None = None) -> Prediction:
    """``served``'s prediction for one bitmap; a model whose arithmetic overflows is a 422 naming ``who`` (by
    default "Model '<name>'"), never null scores."""
    try:
        top = served.top_k(sample)
    except ValueError as error:  # NonFiniteOutputError
        raise InputProblem(422, f"{who or f'Model {served.name!r}'} cannot score this drawing: {error}") from None
    preview = sample[:, :, 0] if sample.ndim == 3 and sample.shape[2] == 1 else sample
    return Prediction(model=served.name, style=served.style, label=top[0][0], preview=preview.tolist(),
                      scores=[Score(label=label, probability=p) for label, p in top])
