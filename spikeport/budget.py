"""What a stranger's file may make spikeport allocate: one memory budget, and regular files only.

Every reader of a user's file (graph, NIR, model, data, profile) computes the bytes that the file
*declares* (array headers, population shapes, the synapses a projection would materialize, a
model's parameters) and calls :func:`check` before it allocates any of them; a file that declares
more than the budget is one line naming the file, the object and both sizes::

    net.spk: population 'h' declares 1,000,000,000 neurons: 8.0 GB of state exceeds the memory budget
    3.9 GB (--max-memory SIZE or SPIKEPORT_MAX_MEMORY)

The budget is :data:`DEFAULT_FRACTION` (one half) of the machine's physical memory
(``os.sysconf``; :data:`FALLBACK_PHYSICAL` (4 GiB) where the system does not say), or the size in
the environment variable :data:`ENV` (``SPIKEPORT_MAX_MEMORY``, e.g. ``2G``, ``512M``:
:func:`parse_size`), or what :func:`set_limit` / :func:`limited` set (the command line's
``--max-memory SIZE``), in that order of precedence, the last first.

Input files must be regular files: :func:`regular_file` refuses a named pipe, a device such as
``/dev/zero``, a directory or a socket by name before anything opens it (an ``open`` of a FIFO
blocks until a writer comes), and :func:`open_regular` opens with ``O_NONBLOCK`` and checks the
opened descriptor again. This module imports nothing of spikeport but its errors.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
import stat
import threading

from .errors import SpikeportError

ENV = "SPIKEPORT_MAX_MEMORY"
DEFAULT_FRACTION = 0.5
FALLBACK_PHYSICAL = 4 * 2**30
FLAG = "--max-memory SIZE or SPIKEPORT_MAX_MEMORY"
UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15,
         "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:e(\d+))?\s*([kmgtp]i?)?b?\s*$", re.IGNORECASE)

_lock = threading.Lock()
_limit: int | None = None  # set_limit's value; None: the environment's, else the default


class BudgetError(SpikeportError):
    """What a file or network declares exceeds the memory budget (or the file is no regular file)."""


def parse_size(text) -> int:
    """Bytes from a size such as ``2G``, ``512M``, ``1.5GB``, ``300MiB``, ``4096`` or ``1e9``.

    K, M, G, T, P (with or without a trailing B) are powers of 1000, as the messages print sizes;
    Ki, Mi, Gi, Ti, Pi powers of 1024. Junk, zero and negative sizes are a :class:`SpikeportError`."""
    if isinstance(text, bool):
        raise SpikeportError(f"memory size {text!r}: give a number of bytes or a size such as 2G or 512M")
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise SpikeportError(f"memory size {str(text)[:40]!r}: give a number of bytes or a size such as 2G, "
                                 f"512M or 300MiB")
        digits, exponent, unit = m.group(1), m.group(2), (m.group(3) or "").lower()
        if exponent is not None and int(exponent) > 30:
            raise SpikeportError(f"memory size {str(text)[:40]!r} is out of range")
        value = float(digits) * 10 ** int(exponent or 0) * UNITS[unit]
        if not math.isfinite(value) or value >= 2**63:
            raise SpikeportError(f"memory size {str(text)[:40]!r} is out of range")
        value = int(value)
    if value < 1:
        raise SpikeportError(f"memory size {str(text)[:40]!r}: must be at least one byte")
    return value


def physical_memory() -> int:
    """The machine's physical memory in bytes (:data:`FALLBACK_PHYSICAL` where the system does not say)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_PHYSICAL
    return pages * size if pages > 0 and size > 0 else FALLBACK_PHYSICAL


def default_limit() -> int:
    """The budget without :func:`set_limit`: $SPIKEPORT_MAX_MEMORY, else DEFAULT_FRACTION of physical memory."""
    text = os.environ.get(ENV, "").strip()
    if text:
        try:
            return parse_size(text)
        except SpikeportError as exc:
            raise SpikeportError(f"{ENV}: {exc}") from None
    return int(physical_memory() * DEFAULT_FRACTION)


def limit() -> int:
    """The memory budget in bytes now in force."""
    value = _limit
    return default_limit() if value is None else value


def set_limit(size) -> int | None:
    """Set the budget (bytes, or a size text for :func:`parse_size`); None goes back to the default.
    Returns the previous setting (None: the default), for :func:`limited` and the command line."""
    global _limit
    new = None if size is None else parse_size(size)
    with _lock:
        previous, _limit = _limit, new
    return previous


@contextlib.contextmanager
def limited(size):
    """``with limited("512M"): ...``: the budget set for the block, the previous one restored after."""
    previous = set_limit(size)
    try:
        yield limit()
    finally:
        global _limit
        with _lock:
            _limit = previous


def number(n) -> str:
    """A count for a message: 1,000,000,000; beyond 10**15 as a power of ten (a hostile file's count may have
    hundreds of digits)."""
    n = int(n)
    return f"{n:,}" if abs(n) < 10**15 else f"about 10^{_exponent(n)}"


def _exponent(n: int) -> int:
    """floor(log10(|n|)) for |n| >= 10**15, from the bit length (str() refuses integers of 4300 digits)."""
    n = abs(int(n))
    bits = n.bit_length()
    if bits < 1000:
        return len(str(n)) - 1
    return int((bits - 1) * math.log10(2))


def human(nbytes) -> str:
    """Bytes with a decimal prefix, one decimal: 8.0 GB, 512.0 MB, 12 bytes."""
    if int(nbytes) >= 10**18:
        return f"about 10^{_exponent(nbytes) - 6} MB"
    nbytes = float(nbytes)
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{int(nbytes)} bytes"


def check(nbytes, what: str, where=None, of: str | None = None) -> int:
    """Refuse ``nbytes`` (what ``what`` declares, e.g. "population 'h' declares 1,000,000,000 neurons") when
    it exceeds the budget; ``where`` (a file) leads the message, ``of`` names the kind of memory ("state").
    Call it before allocating. Returns ``nbytes``."""
    nbytes = int(nbytes)
    budget = limit()
    if nbytes > budget:
        lead = f"{where}: " if where is not None else ""
        kind = f" of {of}" if of else ""
        raise BudgetError(f"{lead}{what}: {human(nbytes)}{kind} exceeds the memory budget {human(budget)} ({FLAG})")
    return nbytes


class Tally:
    """Declared sizes of one file added up as they are met: ``tally.add(nbytes, what)`` checks each item and
    the running total against the budget before the caller allocates it."""

    def __init__(self, where=None, what: str = "the arrays it declares"):
        self.where, self.what, self.total, self.items = where, what, 0, 0

    def add(self, nbytes, what: str, of: str | None = None) -> int:
        check(nbytes, what, self.where, of)
        self.total += int(nbytes)
        self.items += 1
        check(self.total, f"{self.what} ({self.items} so far)", self.where, of)
        return int(nbytes)


# ----------------------------------------------------------------------------- regular files only

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def regular_file(path, what: str = "input file", error=SpikeportError) -> os.stat_result:
    """``os.stat`` of ``path`` (links followed) when it is a regular file; else ``error`` (a SpikeportError
    class) naming the file and what it is: a missing file, a FIFO, a device such as /dev/zero, a directory or
    a socket is refused at once, before anything opens it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: is {_kind(st.st_mode)}, not a regular file; the {what} must be a regular file")
    return st


def open_regular(path, what: str = "input file", error=SpikeportError):
    """``path`` opened for binary reading without blocking (``O_NONBLOCK``), after :func:`regular_file`, and
    the opened descriptor checked again (the name may have been replaced in between)."""
    regular_file(path, what, error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: is {_kind(st.st_mode)}, not a regular file; the {what} must be a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, what: str = "input file", error=SpikeportError, limit_bytes: int | None = None) -> bytes:
    """The whole of a regular file, its size checked first (against ``limit_bytes`` where given, and the
    budget): for small text files such as profiles."""
    with open_regular(path, what, error) as f:
        size = os.fstat(f.fileno()).st_size
        if limit_bytes is not None and size > limit_bytes:
            raise error(f"{path}: {size:,} bytes, more than a {what} may have ({limit_bytes:,})")
        check(size, f"{what} of {size:,} bytes", path)
        try:
            return f.read()
        except OSError as exc:
            raise error(f"{path}: cannot read ({exc.strerror or exc})") from None


# ----------------------------------------------------------------------------- the size of a run

# The largest run spikeport starts (simulate, validate, deploy, power; the Python API's and the command
# line's), checked before the run: steps, and neuron updates = steps x samples x neurons of one run. The
# reference executor does about 1e7 to 1e8 of them a second on a 2-core CPU (digits' MLP), some 1e10 on a
# GPU: 1e13 is a day of a GPU, far beyond any run a paper reports (MNIST's test set, LeNet, T = 1000:
# 6e10). A Python caller may raise them (spikeport.budget.MAX_STEPS, MAX_WORK).
MAX_STEPS = 1_000_000
MAX_WORK = 10**13


def check_run_size(network, steps, samples: int | None = None) -> None:
    """Refuse, before anything runs, ``steps`` above :data:`MAX_STEPS` and (where the number of samples is
    known) steps x samples x neurons above :data:`MAX_WORK`, in one line naming the bound."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        return  # not a count: the backend's own check says what it expected
    if steps > MAX_STEPS:
        raise SpikeportError(f"--steps {steps} exceeds the limit {MAX_STEPS:,} steps")
    if samples is None or steps < 1:
        return
    neurons = sum(int(p.size) for p in network.populations)
    work = int(steps) * int(samples) * neurons
    if work > MAX_WORK:
        raise SpikeportError(f"--steps {steps} x {samples:,} samples x {neurons:,} neurons = {work:.3g} neuron "
                             f"updates exceeds the limit {MAX_WORK:.0e} neuron updates of one run: run fewer "
                             f"--samples or --steps")
