"""``metadata["spikeport"]``: what NIR cannot express, stored as a JSON string on nodes and the graph.

Arrays travel as base64 of their bytes (exact); :func:`meta_in` reads back what :func:`meta_out` wrote.
"""
from __future__ import annotations

import base64
import json
import math

import numpy as np

from ...errors import GraphError

META_KEY = "spikeport"


def meta_out(d: dict) -> dict:
    try:
        return {META_KEY: json.dumps(d, allow_nan=False, sort_keys=True)}
    except (TypeError, ValueError) as exc:
        raise GraphError(f"network: metadata is not plain finite JSON ({exc})") from None


def meta_in(obj, owner: str) -> dict:
    md = getattr(obj, "metadata", None)
    if not isinstance(md, dict) or META_KEY not in md:
        return {}
    value = md[META_KEY]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise GraphError(f"{owner}: metadata[{META_KEY!r}] is not valid JSON") from None
    if not isinstance(value, dict):
        raise GraphError(f"{owner}: metadata[{META_KEY!r}] must be a JSON object")
    return value


def array_to_json(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def array_from_json(d, owner: str) -> np.ndarray:
    try:
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        raw = base64.b64decode(d["data"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise GraphError(f"{owner}: metadata array is malformed") from None
    if dtype.kind != "f" or any(s < 0 for s in shape) or len(raw) != math.prod(shape) * dtype.itemsize:
        raise GraphError(f"{owner}: metadata array is malformed ({dtype}, shape {shape}, {len(raw)} bytes)")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def plain(d: dict) -> dict:
    """numpy scalars to Python numbers, for JSON."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, float)) and not isinstance(v, bool):
            v = float(v)
        elif isinstance(v, np.integer):
            v = int(v)
        out[k] = v
    return out


def reorder(items, names, what):
    """``items`` (populations or projections) in the order the graph metadata lists their names."""
    have = [x.name for x in items]
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(have):
        raise GraphError(f"graph: its spikeport metadata lists {what} {names!r}, the graph has {have!r} (edited "
                         f"after export?); remove metadata['spikeport'] to import it as plain NIR")
    by = {x.name: x for x in items}
    return [by[n] for n in names]
