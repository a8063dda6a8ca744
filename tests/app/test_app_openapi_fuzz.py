"""Schema-driven fuzzing of the app's OpenAPI description (Schemathesis): requests generated from the schema, valid
and invalid, never get a 5xx, and every answer has a documented status code, content type and body shape.

Bounded for CI: a fixed number of examples per operation and kind, derandomized (the same requests every run).
The cases are drawn from Schemathesis' Hypothesis strategies directly, which works whatever pytest plugin API.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402  (hypothesis comes with schemathesis)
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

EXAMPLES = 50  # per operation and kind: about 6 s in all
FUZZING = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
OPERATIONS = ["GET /api/models", "POST /api/predict", "POST /doodle", "POST /api/playground",
              "POST /api/playground/{session}/step", "GET /api/playground/{session}/code",
              "DELETE /api/playground/{session}"]
# Teach's operations are described too; fuzzed: starting a session and adding an example (an unknown session's
# id is the usual case of a generated request: a 404 the schema documents).
TEACH_OPERATIONS = ["POST /api/teach", "GET /api/teach/{session}", "DELETE /api/teach/{session}",
                    "POST /api/teach/{session}/examples", "DELETE /api/teach/{session}/examples/{example}",
                    "DELETE /api/teach/{session}/classes/{label}", "POST /api/teach/{session}/train",
                    "GET /api/teach/{session}/events", "POST /api/teach/{session}/predict",
                    "GET /api/teach/{session}/model", "GET /api/teach/{session}/export"]
FUZZED = [*OPERATIONS, "POST /api/teach", "POST /api/teach/{session}/examples"]
# GET /api/models takes no input, the playground's GET and DELETE only a session id (any string): there is no
# invalid request to make of them.
NO_INVALID_REQUEST = ("GET /api/models", "GET /api/playground/{session}/code", "DELETE /api/playground/{session}")
CASES = [(label, mode) for label in FUZZED for mode in GenerationMode
         if not (label in NO_INVALID_REQUEST and mode == GenerationMode.NEGATIVE)]


@pytest.fixture(scope="module")
def operations(model_files):
    from NeuralNetworks.app import create_app

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(model_files))
    return {operation.label: operation for operation in (result.ok() for result in schema.get_all_operations())}


def test_the_schema_describes_every_public_operation(operations):
    assert sorted(operations) == sorted(OPERATIONS + TEACH_OPERATIONS)


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} {mode.value}" for label, mode in CASES])
def test_generated_requests_get_documented_answers_and_never_a_server_error(operations, label, mode):
    @FUZZING
    @given(case=operations[label].as_strategy(generation_mode=mode))
    def call(case):
        # A request valid for the schema may still be refused on its content (an empty drawing is 422), so the
        # check that schema-valid data is accepted does not apply; every other check does.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    call()
