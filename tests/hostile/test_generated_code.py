"""What a name can do to generated code: a model file's name, a label or a layer name reaches the exported page's
model.js only as escaped JSON data (Hypothesis over any text), so no character of it can end the literal, the line
or the script it sits in. The browser half (the page runs none of it, and its CSP) is in tests/export/test_web.py."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from NeuralNetworks.export.web import model_script
from NeuralNetworks.page import script_json

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None)
JS_LINE_TERMINATORS = re.compile("[\n\r\u2028\u2029]")
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["</script>", "<!--", "\u2028", "\u2029", "\"); alert(1); (\"", "*/", "${alert(1)}", "\\", "\x00"])


@BOUNDED
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | ANY_TEXT,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
                          max_leaves=12))
def test_script_json_is_inert_text_that_reads_back_as_the_value(value):
    text = script_json(value)
    assert text.isascii() and not JS_LINE_TERMINATORS.search(text)
    assert not set(text) & set("<>&")
    assert json.loads(text) == value


@BOUNDED
@given(name=ANY_TEXT, labels=st.lists(ANY_TEXT, min_size=1, max_size=3))
def test_model_js_has_a_fixed_shape_whatever_the_names(name, labels):
    manifest = {"format": "NeuralNetworks.web", "name": name, "labels": labels, "layers": []}
    script = model_script(manifest, b"\x00\x01")
    lines = JS_LINE_TERMINATORS.split(script)
    assert len(lines) == 5 and lines[-1] == ""  # two comment lines, the call over two lines, nothing else
    assert lines[0].startswith("// Exported from NeuralNetworks") and lines[1].startswith("// in a script")
    assert lines[2].startswith("window.nn.register(") and lines[2].endswith(",")
    assert json.loads(lines[2][len("window.nn.register("):-1]) == manifest
    assert lines[3] == '  "AAE=");'
