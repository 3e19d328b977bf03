"""Reading a NIR source: a path (HDF5 checked before nir's parser sees it) or an ``nir.NIRGraph``."""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import FileFormatError, GraphError, SpikeportError
from .common import HDF5_SIGNATURE, SUPPORTED, load_nir

REFUSED = {
    "Delay": "continuous-time delays are not supported (spikeport delays are whole steps on projections)",
    "Threshold": "a bare threshold without a membrane has no spikeport neuron",
    "I": "non-spiking integrators are not supported (spikeport populations spike)",
    "LI": "non-spiking leaky integrators are not supported (spikeport populations spike)",
    "CubaLI": "non-spiking leaky integrators are not supported (spikeport populations spike)",
    "Conv1d": "1-D convolutions are not a spikeport op",
    "NIRGraph": "nested subgraphs are not supported",
}


def check_type(name: str, type_name: str) -> None:
    if type_name in SUPPORTED or type_name == "Identity":
        return
    reason = REFUSED.get(type_name, "unknown node type")
    raise GraphError(f"node {name!r}: NIR type {type_name} is not supported ({reason}); spikeport imports "
                     f"{', '.join(SUPPORTED)}")


def read_file(path: Path):
    from ..io import read_magic

    nir = load_nir()
    if read_magic(path, 8) != HDF5_SIGNATURE:
        raise FileFormatError(f"{path}: not a NIR file (no HDF5 signature)")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f["node"]
            top = root["type"][()]
            top = top.decode() if isinstance(top, bytes) else str(top)
            types = {}
            if top == "NIRGraph":
                for name, g in root["nodes"].items():
                    t = g["type"][()]
                    types[name] = t.decode() if isinstance(t, bytes) else str(t)
    except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise FileFormatError(f"{path}: not a readable NIR graph ({msg})") from None
    if top != "NIRGraph":
        raise FileFormatError(f"{path}: the NIR file holds a single {top} node, not a graph")
    for name, t in types.items():  # name the node before nir's parser meets a type it may not know
        try:
            check_type(name, t)
        except GraphError as exc:
            raise GraphError(f"{path}: {exc}") from None
    try:
        return nir.read(path, type_check=False)
    except Exception as exc:  # a third-party parser on a user's file: any failure is the file's
        msg = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise FileFormatError(f"{path}: cannot read the NIR graph ({type(exc).__name__}{': ' + msg if msg else ''})") \
            from None


def read_source(source):
    """(graph, where, fields written per node or None) for a path or an nir.NIRGraph."""
    nir = load_nir()
    if isinstance(source, nir.NIRGraph):
        return source, "NIR graph", None
    if isinstance(source, (str, os.PathLike)):
        graph = read_file(Path(source))
        return graph, str(source), written_fields(Path(source))
    raise SpikeportError(f"import_nir: source must be a path or an nir.NIRGraph, got {type(source).__name__}")


def written_fields(path: Path):
    """{node name: {field: True}} as stored in the HDF5 file (nir fills absent fields on reading), or None."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return {name: {k: True for k in g.keys()} for name, g in f["node"]["nodes"].items()
                    if isinstance(g, h5py.Group)}
    except Exception:  # only a hint for detection; the file was read already
        return None
