"""Fixtures for the app tests: small model files in a temporary folder (the shipped models are not needed)
and a test client of the app serving them."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_test_models import DIGIT_LABELS, DOODLE_LABELS, save_untrained


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("app-models")
    return {"doodles": save_untrained(folder / "doodles.npz", DOODLE_LABELS),
            "digits": save_untrained(folder / "digits.npz", DIGIT_LABELS, input_shape=(28, 28, 1))}


@pytest.fixture(scope="session")
def test_client_class():
    """fastapi's TestClient, imported without Starlette's notice that it may move from httpx to httpx2."""
    import warnings

    import starlette.exceptions

    notice = getattr(starlette.exceptions, "StarletteDeprecationWarning", DeprecationWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", notice)
        from fastapi.testclient import TestClient
    return TestClient


@pytest.fixture(scope="session")
def client(model_files, test_client_class):
    from NeuralNetworks.app import create_app

    with test_client_class(create_app(model_files)) as client:
        yield client


@pytest.fixture(scope="module")
def base_url(model_files):
    """For the browser tests: the app serving ``model_files``, by uvicorn in a thread on 127.0.0.1, stopped after
    the module's tests."""
    from browser_support import served
    from NeuralNetworks.app import create_app

    with served(create_app(model_files)) as url:
        yield url
