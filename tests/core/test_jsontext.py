import json
import math
from typing import Any

import pytest

from conveyor.core.jsontext import compact_encoder

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
