"""Staging entries beside a target (``.NAME.<pid>-<start>-<n>.tmp`` and ``.old``), the processes that
own them, and the file-system steps that publish a staged output: what :class:`spikeport.outputs.Output`
is built on. Nothing here checks a user's path; that is the Output's."""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import stat
import threading
import time
from pathlib import Path

__all__ = ["NAME_MAX", "PATH_MAX", "STAGING_ROOM", "clean_stale", "exchange_entries", "fsync_path", "own_start",
           "remove_entry", "staging_entries", "staging_name", "start_time", "user_mode"]

NAME_MAX = 255                  # bytes in one name (Linux, macOS, Windows); less where the file system says so
PATH_MAX = 4096                 # bytes in a path given to the system, with its terminating NUL
STAGING_ROOM = 48               # bytes a staging name may add to the target's path
LEGACY_IDLE_S = 1.0             # an older version's staging file untouched this long and open nowhere is stale
LEGACY_DIR_IDLE_S = 600.0       # an older version's staging directory: untouched this long

_SEQ = itertools.count()
_SEQ_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- processes

def _proc_stat(pid: int):
    """(state, start time in clock ticks since boot) of ``pid`` from /proc, or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # after the command name, which may hold spaces and ")"
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int:
    found = _proc_stat(pid)
    return 0 if found is None else found[1]


_OWN = {}


def own_start() -> int:
    pid = os.getpid()  # a forked child gets its own
    if pid not in _OWN:
        _OWN[pid] = start_time(pid)
    return _OWN[pid]


def _alive(pid: int, start: int) -> bool:
    """Whether the process that wrote a staging entry (``pid``, started at ``start``; 0: unknown) runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return True
    found = _proc_stat(pid)
    if found is None:  # no /proc: the pid exists, so it may be the writer
        return True
    state, started = found
    if state in ("Z", "X"):  # killed, not yet reaped: it writes nothing more
        return False
    return not (start and started != start)  # the pid was reused by another process


def _open_anywhere(paths) -> bool:
    """Whether a process this user can see has one of ``paths`` (or a file under one) open or as its
    working directory. True where it cannot be told (no /proc)."""
    if not os.path.isdir("/proc/self/fd"):
        return True
    paths = [os.path.realpath(p) for p in paths]
    under = tuple(p + os.sep for p in paths)
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return True
    for pid in pids:
        base = f"/proc/{pid}"
        try:
            links = [os.path.join(base, "fd", fd) for fd in os.listdir(os.path.join(base, "fd"))]
        except OSError:
            continue
        links.append(os.path.join(base, "cwd"))
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target in paths or target.startswith(under):
                return True
    return False


# ----------------------------------------------------------------------------- staging names


def _prefix(name: str) -> str:
    """The start of every staging name of the target ``name``: ``.NAME.``, or, where that would leave no
    room for the rest within NAME_MAX, a shortened name and a digest of the whole one."""
    raw = os.fsencode(name)
    if len(raw) + STAGING_ROOM <= NAME_MAX:
        return f".{name}."
    digest = hashlib.sha256(raw).hexdigest()[:16]
    keep = raw[:NAME_MAX - STAGING_ROOM - len(digest) - 1]
    return "." + os.fsdecode(keep) + "~" + digest + "."


_ENTRY = r"(\d+)-(\d+)-(\d+)\.(tmp|old)"


def staging_entries(target) -> list:
    """[(path, pid, start, what)] of every staging entry beside ``target`` (``what``: "tmp", a new output
    being written; "old", an earlier DIR moved aside; "legacy", an older version's staging file)."""
    target = Path(os.path.abspath(os.fspath(target)))
    parent, name = target.parent, target.name
    prefix = _prefix(name)
    ours = re.compile(re.escape(prefix) + _ENTRY + "$")
    legacy = re.compile(re.escape(f".{name}.") + r"(?:[a-z0-9_]{8}\.tmp|old-(\d+))$")
    found = []
    try:
        names = [e for e in os.listdir(parent) if e.startswith(".")]
    except OSError:
        return []
    for entry in names:
        m = ours.match(entry)
        if m:
            found.append((parent / entry, int(m.group(1)), int(m.group(2)), m.group(4)))
            continue
        m = legacy.match(entry)
        if m:
            if m.group(1) is not None:  # deploy's DIR moved aside by an older version
                found.append((parent / entry, int(m.group(1)), 0, "old"))
            else:
                found.append((parent / entry, 0, 0, "legacy"))
    return found


def remove_entry(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _legacy_stale(path: Path) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    if st.st_uid != os.getuid():
        return False
    if stat.S_ISDIR(st.st_mode):
        newest = st.st_mtime
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, n)).st_mtime)
        return time.time() - newest >= LEGACY_DIR_IDLE_S and not _open_anywhere([path])
    return time.time() - st.st_mtime >= LEGACY_IDLE_S and not _open_anywhere([path])


def clean_stale(target) -> list:
    """Remove the staging entries of ``target`` whose process is no longer running; where the target is
    missing and an earlier DIR was moved aside by such a process (killed between two renames), put it
    back. Never touches a live process's entries. Returns the paths removed or restored."""
    target = Path(os.path.abspath(os.fspath(target)))
    done = []
    olds = []
    for path, pid, start, what in staging_entries(target):
        if what == "legacy":
            stale = _legacy_stale(path)
        else:
            stale = not _alive(pid, start)
        if not stale:
            continue
        if what == "old":
            olds.append(path)
            continue
        with contextlib.suppress(OSError):
            remove_entry(path)
            done.append(path)
    if olds:
        def age(p):
            try:
                return p.lstat().st_mtime
            except OSError:
                return 0.0

        olds.sort(key=age, reverse=True)  # the newest: what the target held last
        if not os.path.lexists(target):
            with contextlib.suppress(OSError):
                os.rename(olds[0], target)
                done.append(olds.pop(0))
        for path in olds:
            with contextlib.suppress(OSError):
                remove_entry(path)
                done.append(path)
    return done


def staging_name(name: str, what: str = "tmp") -> str:
    with _SEQ_LOCK:
        n = next(_SEQ)
    return f"{_prefix(name)}{os.getpid()}-{own_start()}-{n}.{what}"


# ----------------------------------------------------------------------------- the file system

def user_mode(directory: bool = False) -> int:
    """The permissions a new file (0666) or directory (0777) gets under the user's umask."""
    mask = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    mask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    if mask is None:
        mask = os.umask(0o022)
        os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


_EXCHANGE = None


def exchange_entries(a: Path, b: Path) -> bool:
    """Swap two entries of one directory atomically (Linux renameat2 RENAME_EXCHANGE); False where the
    system cannot."""
    global _EXCHANGE
    if _EXCHANGE is None:
        _EXCHANGE = False
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _EXCHANGE = fn
        except (OSError, AttributeError):
            pass
    if not _EXCHANGE:
        return False
    import ctypes

    at_cwd, rename_exchange = -100, 2
    if _EXCHANGE(at_cwd, os.fsencode(str(a)), at_cwd, os.fsencode(str(b)), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot; rename in two steps
        return False
    raise OSError(err, os.strerror(err), str(b))


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to the disk (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
