"""The one JSON sanitiser: what it makes of every type that event logs, records and master
metadata give it, and the event log's fast path writing the same text."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from enum import Enum, StrEnum
from pathlib import Path

import numpy as np

from darkflow.io.jsonsafe import to_jsonable
from darkflow.registry.events import dumps


class _Colour(StrEnum):
    RED = "red"


class _Level(Enum):
    HIGH = 3


def test_every_input_type_becomes_its_plain_json_value():
    value = {
        1: (np.float32(0.5), np.int64(7), np.bool_(True)),
        "nan": [math.nan, math.inf, -math.inf, np.float64("nan")],
        "array": np.array([[1.0, np.nan], [3.0, 4.0]]),
        "ints": np.arange(3, dtype=np.uint16),
        "enums": [_Colour.RED, _Level.HIGH],
        "when": datetime(2026, 11, 23, 18, 30, tzinfo=UTC),
        "path": Path("a/b.fits"),
        "set": {5},
        "plain": ["x", 2, 2.5, None, False],
    }
    out = to_jsonable(value)
    assert out == {
        "1": [0.5, 7, True],
        "nan": [None, None, None, None],
        "array": [[1.0, None], [3.0, 4.0]],
        "ints": [0, 1, 2],
        "enums": ["red", 3],
        "when": "2026-11-23T18:30:00+00:00",
        "path": "a/b.fits",
        "set": [5],
        "plain": ["x", 2, 2.5, None, False],
    }
    assert [type(v) for v in out["1"]] == [float, int, bool]
    assert type(out["enums"][0]) is str
    json.dumps(out, allow_nan=False)  # nothing left that JSON cannot hold


def test_the_event_logs_fast_path_writes_what_the_sanitiser_writes():
    for value in (
        {"a": np.arange(3.0), "b": _Colour.RED, "c": datetime(2026, 1, 2, tzinfo=UTC)},
        {"a": np.array([1.0, np.nan]), "b": Path("x")},
        {"levels": [np.float32(1.25), np.int32(2)], 3: "int key"},
    ):
        assert dumps(value) == json.dumps(to_jsonable(value), separators=(",", ":"))
