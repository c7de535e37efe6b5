import json
import json.encoder
import logging
import math
from typing import Any

import pytest

from conveyor.core import jsontext
from conveyor.core.jsontext import compact_encoder


@pytest.fixture(autouse=True, params=["private hook", "public fallback"])
def encoder_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on CPython's c_make_encoder and on the public fallback."""
    if request.param == "public fallback":
        monkeypatch.setattr(jsontext, "c_make_encoder", None)
    else:
        assert jsontext.c_make_encoder is json.encoder.c_make_encoder  # type: ignore[attr-defined]
    return str(request.param)


VALUES: list[Any] = [
    {"a": [1, 2.5, None, True, False, 'é\n"\\x\u2028'], "b": {"c": {}}},
    [],
    {},
    3,
    -0.0,
    1e300,
    10**40,
    "text",
    None,
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
]


@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_json_dumps(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert compact_encoder()(value) == expected


def test_errors_and_options() -> None:
    encode = compact_encoder()
    with pytest.raises(ValueError):
        encode({"x": math.nan})
    with pytest.raises(TypeError, match="object"):
        encode([object()])
    assert compact_encoder(allow_nan=True)([math.inf]) == "[Infinity]"
    assert compact_encoder(default=lambda v: sorted(v))({"s": {2, 1}}) == '{"s":[1,2]}'
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        encode(loop)
    assert encode(["after an error"]) == '["after an error"]'


def test_the_hook_is_checked_and_a_missing_or_changed_one_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = json.encoder.c_make_encoder  # type: ignore[attr-defined]

    def changed(*args: Any) -> Any:
        raise TypeError("c_make_encoder() takes 10 arguments")

    with caplog.at_level(logging.WARNING, logger="conveyor.core"):
        assert jsontext.checked_hook(real) is real
        assert caplog.records == []
        assert jsontext.checked_hook(None) is None
        assert jsontext.checked_hook(changed) is None
        assert jsontext.checked_hook(lambda *args: lambda value, level: ["{}"]) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all("public encoder" in line for line in lines)
