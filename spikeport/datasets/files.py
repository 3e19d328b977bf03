"""Reading a stranger's array files: .npy and .npz (a zip of .npy members), headers first.

Every reader here opens regular files only (a FIFO, a device such as /dev/zero or a directory is refused by
name before it is opened: :func:`spikeport.budget.regular_file`), reads the .npy header, checks the dtype
(numbers only: nothing pickled), the declared size against the bytes the file or member holds and against the
memory budget (:mod:`spikeport.budget`), and only then allocates and reads. An .npz member must have a plain
name (``x.npy``: no directories, no ``..``, not twice). Every fault is one line naming the file (and the member).
"""
from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ..budget import Tally, number, open_regular
from ..errors import DataError

NUMERIC = "biuf"  # bool, signed and unsigned integers, floats
CHUNK = 1 << 24   # bytes read at a time into the allocated array
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
              RuntimeError, UnicodeDecodeError, KeyError, IndexError, OverflowError, TypeError)


def npy_header(stream, where: str) -> tuple:
    """(shape, dtype, fortran order, data bytes) of the .npy at the stream's position, nothing of the data
    read; a header that is not a numeric .npy is a DataError naming ``where``."""
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # numpy parses the header with ast.literal_eval: garbage may raise anything
        msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DataError(f"{where}: not a readable .npy array ({msg})") from None
    if dtype.hasobject or dtype.kind not in NUMERIC or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{where}: holds {dtype} values; give numbers (integers or floats)")
    if any(int(s) < 0 for s in shape):
        raise DataError(f"{where}: declares a negative shape {shape}")
    shape = tuple(int(s) for s in shape)
    return shape, dtype, bool(fortran), math.prod(shape) * dtype.itemsize


def read_npy(stream, where: str, available: int, tally: Tally, extra_per_value: int = 0, cap=None) -> np.ndarray:
    """The .npy array at the stream's position, whose container holds ``available`` bytes from the start of
    the .npy: its header checked, its declared size checked against ``cap`` (a (bytes, words) limit of the
    caller's, or None), the bytes there and the budget (``tally``; plus ``extra_per_value`` bytes per value for
    what the caller makes of it, such as a float32 copy), then allocated and read."""
    start = stream.tell()
    shape, dtype, fortran, nbytes = npy_header(stream, where)
    if cap is not None and nbytes > cap[0]:
        raise DataError(f"{where}: declares {number(nbytes)} bytes of data (shape {shape}), over the {cap[0]:,}-byte "
                        f"limit{cap[1]}")
    stored = available - (stream.tell() - start)
    if nbytes > stored:
        raise DataError(f"{where}: the header declares {number(nbytes)} bytes of data (shape {shape}, {dtype}) but the "
                        f"file holds {max(0, stored):,}: truncated")
    count = math.prod(shape)
    tally.add(nbytes + count * extra_per_value, f"{where}: declares shape {shape} of {dtype}", of="data")
    a = np.empty(count, dtype=dtype)
    view = memoryview(a).cast("B") if a.nbytes else memoryview(b"")
    got = 0
    try:
        while got < a.nbytes:
            n = stream.readinto(view[got:got + CHUNK])
            if not n:
                break
            got += n
    except ZIP_ERRORS as exc:
        msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DataError(f"{where}: cannot read the array ({msg})") from None
    if got != a.nbytes:
        raise DataError(f"{where}: truncated ({got:,} of {a.nbytes:,} bytes of data)")
    if fortran:
        return a.reshape(shape[::-1]).T
    return a.reshape(shape)


def plain_member(name: str) -> bool:
    """A member name an .npz writer gives an array: ``key.npy`` with no directory, no ``..`` and no controls."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".") \
        and name.isprintable() and len(name) <= 200


def npz_members(z: zipfile.ZipFile, where: str) -> dict:
    """{key: ZipInfo} of an .npz archive (``x.npy`` is key ``x``); a member with a path-like name (such as
    ``../../x.npy``) or a name used twice is refused, naming it."""
    members = {}
    for info in z.infolist():
        name = info.filename
        if not plain_member(name):
            raise DataError(f"{where}: member {name[:80]!r} is not a plain array name (an .npz holds key.npy "
                            f"members, no directories)")
        key = name[:-4] if name.endswith(".npy") else name
        if key in members:
            raise DataError(f"{where}: holds array {key!r} twice")
        members[key] = info
    return members


def read_npz(path, keys, where: str | None = None, required=(), extra_per_value: int = 0,
             what: str = "data file", cap=None, required_words: str = "needs arrays named") -> dict:
    """{key: array} of the arrays ``keys`` present in the .npz archive ``path`` (those in ``required`` must be
    there), every member's header checked before anything is allocated and the declared sizes added up
    against the budget."""
    path = Path(path)
    where = where or str(path)
    with open_regular(path, what, DataError) as f:
        try:
            z = zipfile.ZipFile(f)
        except ZIP_ERRORS as exc:
            msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DataError(f"{where}: not a readable .npz archive ({msg})") from None
        with z:
            members = npz_members(z, where)
            missing = [k for k in required if k not in members]
            if missing:
                raise DataError(f"{where}: {required_words} {', '.join(missing)} (it has: "
                                f"{', '.join(sorted(members)) or 'nothing'})")
            tally = Tally(None, f"{where}: the arrays it declares")
            out = {}
            for key in keys:
                if key not in members:
                    continue
                info = members[key]
                try:
                    with z.open(info) as member:
                        out[key] = read_npy(member, f"{where}[{key}]", info.file_size, tally, extra_per_value,
                                            cap)
                except DataError:
                    raise
                except ZIP_ERRORS as exc:
                    msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
                    raise DataError(f"{where}[{key}]: cannot read ({msg})") from None
            return out


def npz_keys(path) -> list:
    """The array names of an .npz archive (nothing read; [] when it is not one)."""
    try:
        with open_regular(path, "data file", DataError) as f, zipfile.ZipFile(f) as z:
            return list(npz_members(z, str(path)))
    except (DataError, *ZIP_ERRORS):
        return []


def read_npy_file(path, where: str | None = None, extra_per_value: int = 0, what: str = "data file",
                  cap=None) -> np.ndarray:
    """The array of an .npy file, its header checked against the file's size and the budget first."""
    where = where or str(path)
    with open_regular(path, what, DataError) as f:
        size = os.fstat(f.fileno()).st_size
        return read_npy(f, where, size, Tally(None, f"{where}: the array it declares"), extra_per_value, cap)
