"""Reading a NIR source: a path (HDF5 checked before nir's parser sees it) or an ``nir.NIRGraph``.

Before nir's parser reads a file, :func:`check_hdf5` walks it without reading any data: no soft or external
links and no dataset stored in another file (HDF5 would open whatever they name), and every dataset's
declared size (shape times item size) against the bytes it stores (a dataset never written reads as its
fill value: a small file could declare gigabytes) and against the memory budget (:mod:`spikeport.budget`).

The HDF5 library itself can loop forever or crash on a corrupt file (fuzzing found a variable-length string
whose global-heap entry was zeroed: reading it never returns), and no check in Python can stop C code. So
:func:`read_guarded` reads the file in a forked child with a time limit, which sends the graph back. A child
that runs out of time or dies from a signal is a one-line error naming the file.
"""
from __future__ import annotations

import contextlib
import math
import os
import pickle
import select
import signal
import stat
import time
from pathlib import Path

from ...budget import BudgetError, Tally, number
from ...errors import FileFormatError, GraphError, SpikeportError
from .common import HDF5_SIGNATURE, SUPPORTED, load_nir

# A compressed (filtered) dataset may declare at most this many times the bytes it stores (nir writes none).
MAX_EXPANSION = 100
# The time the reading child may take: this many seconds (SPIKEPORT_NIR_READ_SECONDS to change), plus one for
# every READ_BYTES_PER_S of the file (a sound 50 KB NIR file reads in some 20 ms, 100 MB of weights in about a
# second on a 2-core machine).
READ_SECONDS = 30.0
READ_ENV = "SPIKEPORT_NIR_READ_SECONDS"
READ_BYTES_PER_S = 20e6

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
        graph, fields = read_guarded(Path(source))
        return graph, str(source), fields
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



def read_guarded(path: Path):
    """(graph, fields written per node) of :func:`read_file` and :func:`written_fields`, read in a forked child
    that sends them back (pickled, through a pipe): a child that does not finish within the time limit
    (:func:`read_seconds` plus the file's share) or dies from a signal (the HDF5 library crashed) is a one-line
    FileFormatError naming the file; a refusal in the child is raised here as it was there. Where the system
    cannot fork, or the path is not a regular file (read_file refuses it unopened), it is read here."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if not hasattr(os, "fork") or st is None or not stat.S_ISREG(st.st_mode):
        return read_file(path), written_fields(path)
    limit = read_seconds() + st.st_size / READ_BYTES_PER_S
    parent = os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, send, leave without running the parent's cleanup
        try:
            os.close(r)
            _child(path, parent, w)
        finally:
            os._exit(0)
    os.close(w)
    chunks, status = [], None
    try:
        deadline = time.monotonic() + limit
        with os.fdopen(r, "rb", buffering=0) as pipe:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([pipe], [], [], left)[0]:
                    raise FileFormatError(f"{path}: the HDF5 library did not finish reading it in {limit:.0f} s (a "
                                          f"corrupt HDF5 file can make it loop); not a readable NIR file")
                chunk = pipe.read(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) or not chunks:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"exit {status}"
        raise FileFormatError(f"{path}: the HDF5 library crashed reading it ({name}); not a readable NIR file")
    answer = pickle.loads(b"".join(chunks))
    if answer[0] == "ok":
        return answer[1], answer[2]
    _, kind, message = answer
    raise _ERRORS.get(kind, FileFormatError)(message)


_ERRORS = {"FileFormatError": FileFormatError, "GraphError": GraphError, "BudgetError": BudgetError,
           "SpikeportError": SpikeportError}


def _child(path: Path, parent: int, w: int) -> None:
    """The child's part of :func:`read_guarded`: read the file, write the answer to the pipe ``w``."""
    import faulthandler
    import warnings

    faulthandler.disable()  # a crash of the child is reported by the parent, in one line
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the request took effect
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answer = ("ok", read_file(path), written_fields(path))
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except SpikeportError as exc:
        kind = type(exc).__name__ if type(exc).__name__ in _ERRORS else "FileFormatError"
        data = pickle.dumps(("error", kind, str(exc)))
    except Exception as exc:  # noqa: BLE001 - a third-party library on a stranger's file: the file's fault
        msg = str(exc).splitlines()[0][:160] if str(exc) else ""
        data = pickle.dumps(("error", "FileFormatError", f"{path}: cannot read the NIR graph ({type(exc).__name__}"
                                                         f"{': ' + msg if msg else ''})"))
    view = memoryview(data)
    while view:
        view = view[os.write(w, view):]


def read_seconds() -> float:
    """The reading child's time limit before the file's share: SPIKEPORT_NIR_READ_SECONDS, else :data:`READ_SECONDS`."""
    text = os.environ.get(READ_ENV)
    if text is None:
        return READ_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value < math.inf):
        raise SpikeportError(f"{READ_ENV}={text!r}: expected a number of seconds above 0")
    return value


def _die_with_parent() -> None:
    """Ask Linux to kill this (child) process when its parent dies (prctl PR_SET_PDEATHSIG): a parent
    killed while the child is stuck in the HDF5 library leaves nothing behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
