"""Reading a NIR source: a path (HDF5 checked before nir's parser sees it) or an ``nir.NIRGraph``.

Before nir's parser reads a file, :func:`check_hdf5` walks it without reading any data: no soft or external
links and no dataset stored in another file (HDF5 would open whatever they name), and every dataset's
declared size (shape times item size) against the bytes it stores (a dataset never written reads as its
fill value: a small file could declare gigabytes) and against the memory budget (:mod:`spikeport.budget`).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from ...budget import BudgetError, Tally, number
from ...errors import FileFormatError, GraphError, SpikeportError
from .common import HDF5_SIGNATURE, SUPPORTED, load_nir

# A compressed (filtered) dataset may declare at most this many times the bytes it stores (nir writes none).
MAX_EXPANSION = 100

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


def check_hdf5(f, path) -> None:
    """Refuse links, external storage and datasets that declare more than they store or than the memory budget
    allows, in the open ``h5py.File`` ``f``, before anything reads a dataset."""
    import h5py

    # the callbacks return the fault (which stops the walk) rather than raise it through h5py's iteration
    def link(name, lnk):
        if isinstance(lnk, (h5py.SoftLink, h5py.ExternalLink)):
            kind = "an external" if isinstance(lnk, h5py.ExternalLink) else "a soft"
            return FileFormatError(f"{path}: {name!r} is {kind} link; a NIR file holds plain groups and datasets")
        return None

    fault = f.visititems_links(link) if hasattr(f, "visititems_links") else None  # h5py >= 3.11
    if fault is not None:
        raise fault
    tally = Tally(path, "the datasets it declares")

    def item(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return None
        plist = obj.id.get_create_plist()
        if plist.get_external_count():
            return FileFormatError(f"{path}: dataset {name!r} stores its data in another file; a NIR file holds "
                                   f"its own data")
        shape = obj.shape
        count = 0 if shape is None else math.prod(int(s) for s in shape)
        nbytes = count * obj.dtype.itemsize
        stored = obj.id.get_storage_size()
        filtered = obj.chunks is not None and plist.get_nfilters() > 0
        if nbytes > (MAX_EXPANSION * stored if filtered else stored):
            why = f"compressed beyond {MAX_EXPANSION} times" if filtered else "truncated"
            return FileFormatError(f"{path}: dataset {name!r} declares shape {tuple(shape)} of {obj.dtype} "
                                   f"({number(nbytes)} bytes) but stores {stored:,} bytes (never written, or {why})")
        try:
            tally.add(nbytes, f"dataset {name!r} of shape {tuple(shape)}")
        except BudgetError as exc:
            return exc
        return None

    fault = f.visititems(item)
    if fault is not None:
        raise fault


def read_file(path: Path):
    from ..io import read_magic

    nir = load_nir()
    if read_magic(path, 8, "NIR file") != HDF5_SIGNATURE:
        raise FileFormatError(f"{path}: not a NIR file (no HDF5 signature)")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            check_hdf5(f, path)
            root = f["node"]
            top = root["type"][()]
            top = top.decode() if isinstance(top, bytes) else str(top)
            types = {}
            if top == "NIRGraph":
                for name, g in root["nodes"].items():
                    t = g["type"][()]
                    types[name] = t.decode() if isinstance(t, bytes) else str(t)
    except (FileFormatError, BudgetError):
        raise
    except Exception as exc:  # h5py on a corrupt file raises many types (OSError, KeyError, SystemError, ...)
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
