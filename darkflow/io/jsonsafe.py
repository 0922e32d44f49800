"""Plain JSON values from what darkflow records: the one sanitiser of event logs, records and
master metadata."""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps`` writes without help and without NaN.

    Mappings become dicts with string keys, lists, tuples, sets and numpy arrays become lists,
    enums their values, datetimes ISO strings, paths strings, numpy scalars Python numbers, and
    NaN or an infinity ``None``; anything else is returned as it is.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
