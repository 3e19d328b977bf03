"""Every command's outputs, checked and staged alike (``--out`` of train, convert, export, deploy and
demo, ``--json`` and ``--html``; :func:`spikeport.models.save_model`, NIR export and deploy's DIR in
the Python API).

An :class:`Output` is a path, the option that named it (for the messages), the kind of output it is
and whether ``--force`` was given. :meth:`Output.check` runs every check before any work, so a bad
path fails in a second rather than after an hour of training:

- the parent exists and is a writable directory (not read-only);
- the name is at most ``NAME_MAX`` (255) bytes and the path at most ``PATH_MAX`` less the room a
  staging name needs;
- not under /proc, /sys or /dev (/dev/shm excepted), and not a non-regular target: an existing
  directory given as a FILE (``--json .``), a file given as a DIR, a FIFO, a device, a socket, a
  symbolic link (never written through, never replaced), the working directory or one holding it;
- the --force rule: an existing output is replaced only with ``--force``, and then only where it is
  recognisably an earlier output of the same kind (a graph file for convert, a model file for train,
  JSON for --json, ...); an empty file or an empty directory holds nothing and counts as absent.

Staging: the output is written into a hidden entry beside the target, ``.NAME.<pid>-<start>-<n>.tmp``
(pid and start time of the writing process, a counter), and renamed into place only when complete
(a directory replacing one is swapped atomically where the system can: Linux's RENAME_EXCHANGE), so
a run killed at any moment leaves the old result or the new one, never a partial one. Each check
removes the staging entries of the same target left by a process that is no longer running (or
whose pid now belongs to another process), and never those of a live one; an earlier DIR moved
aside by a run killed between two renames is put back. Staging files of older versions
(``.NAME.XXXXXXXX.tmp``, no pid) are removed once no process has them open.

This module imports nothing of spikeport but :mod:`spikeport.errors`: every layer may use it.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import SpikeportError

__all__ = ["Output", "Kind", "KINDS", "NAME_MAX", "PATH_MAX", "STAGING_ROOM", "clean_stale", "staging_entries",
           "write_file", "save_file", "user_mode"]

NAME_MAX = 255                  # bytes in one name (Linux, macOS, Windows); less where the file system says so
PATH_MAX = 4096                 # bytes in a path given to the system, with its terminating NUL
STAGING_ROOM = 48               # bytes a staging name may add to the target's path
NOT_FOR_OUTPUTS = ("/proc", "/sys", "/dev")
FOR_OUTPUTS_UNDER_DEV = ("/dev/shm",)   # a tmpfs: a place for files
LEGACY_IDLE_S = 1.0             # an older version's staging file untouched this long and open nowhere is stale
LEGACY_DIR_IDLE_S = 600.0       # an older version's staging directory: untouched this long

_SEQ = itertools.count()
_SEQ_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- kinds of output

def _head(path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _zip_member(path, test) -> bool:
    """A zip file with a member for which ``test(zipfile, info)`` holds."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(test(z, info) for info in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError):
        return False


def _is_graph(path) -> bool:
    return _zip_member(path, lambda z, info: info.filename == "spikeport.json")


def _torch_file_with(marker: bytes):
    """A torch.save zip whose pickle holds ``marker`` (the format string, stored verbatim): read as bytes,
    never unpickled."""
    def test(z, info):
        return info.filename.endswith("/data.pkl") and info.file_size < 2**26 and marker in z.read(info)
    return lambda path: _zip_member(path, test)


def _is_json(path) -> bool:
    try:
        if os.path.getsize(path) > 2**28:  # a huge file: its first character says enough
            return _head(path, 64).lstrip()[:1] in (b"{", b"[")
        with open(path, "rb") as f:
            json.loads(f.read())
        return True
    except (OSError, ValueError):
        return False


def _is_html(path) -> bool:
    try:
        head = _head(path, 512).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    except OSError:
        return False
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


def _is_hdf5(path) -> bool:
    try:
        return _head(path, 8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _is_deploy_dir(path) -> bool:
    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "target" in manifest and "spikeport" in manifest


@dataclass(frozen=True)
class Kind:
    """What an output is: ``what`` names it in messages ("a spikeport graph file"); ``directory``:
    a DIR, else a FILE; ``recognise(path)``: True for an earlier output of this kind (what ``--force``
    may replace; None: anything of the right type)."""

    name: str
    what: str
    directory: bool = False
    recognise: Callable | None = None


KINDS = {k.name: k for k in (
    Kind("file", "a file"),
    Kind("directory", "a directory", directory=True),
    Kind("graph", "a spikeport graph file", recognise=_is_graph),
    Kind("model", "a spikeport model file", recognise=_torch_file_with(b"spikeport-model")),
    Kind("checkpoint", "a spikeport checkpoint", recognise=_torch_file_with(b"spikeport-checkpoint")),
    Kind("nir", "a NIR (HDF5) file", recognise=_is_hdf5),
    Kind("json", "a JSON file", recognise=_is_json),
    Kind("html", "an HTML page", recognise=_is_html),
    Kind("deploy", "a deploy directory (one with spikeport's manifest.json)", directory=True,
         recognise=_is_deploy_dir),
)}


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


def _start_time(pid: int) -> int:
    found = _proc_stat(pid)
    return 0 if found is None else found[1]


_OWN = {}


def _own_start() -> int:
    pid = os.getpid()  # a forked child gets its own
    if pid not in _OWN:
        _OWN[pid] = _start_time(pid)
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


def _remove(path: Path) -> None:
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
            _remove(path)
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
                _remove(path)
                done.append(path)
    return done


def _staging_name(name: str, what: str = "tmp") -> str:
    with _SEQ_LOCK:
        n = next(_SEQ)
    return f"{_prefix(name)}{os.getpid()}-{_own_start()}-{n}.{what}"


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


def _exchange(a: Path, b: Path) -> bool:
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


def _fsync(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to the disk (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _describe(mode: int) -> str:
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


# ----------------------------------------------------------------------------- the output

@dataclass(frozen=True)
class Output:
    """One output of a command: ``path`` named by ``option`` ("--out", "--json"; None in the Python API,
    whose messages name the path alone), of ``kind`` (a name in :data:`KINDS` or a :class:`Kind`),
    ``force``: replace an existing output of the same kind."""

    path: object
    option: str | None = None
    kind: object = "file"
    force: bool = False
    hint: str = ""          # appended to "give --force to replace it" (train's checkpoint: "or --resume ...")

    @property
    def spec(self) -> Kind:
        return self.kind if isinstance(self.kind, Kind) else KINDS[self.kind]

    @property
    def label(self) -> str:
        """The option and the path as given (a path of over 200 characters shortened in the middle)."""
        text = os.fspath(self.path)
        text = os.fsdecode(text) if isinstance(text, bytes) else text
        if len(text) > 200:
            text = f"{text[:90]}...{text[-90:]}"
        return f"{self.option} {text}" if self.option else text

    @property
    def target(self) -> Path:
        return Path(os.path.abspath(os.fspath(self.path)))

    def fail(self, why: str):
        raise SpikeportError(f"{self.label}: {why}")

    # ------------------------------------------------------------------ checks

    def check(self, clean: bool = True) -> Path:
        """Every check (module docstring), before any work; removes stale staging entries of the target
        (``clean``). Returns the absolute target path. Raises a one-line SpikeportError naming the option
        and the path."""
        kind = self.spec
        try:
            text = os.fspath(self.path)
        except TypeError:
            raise SpikeportError(f"{self.option or 'output'}: expected a path, got {self.path!r}") from None
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if not text:
            raise SpikeportError(f"{self.option or 'output'}: an empty path")
        if "\0" in text:
            self.fail("the path contains a NUL character")
        target = self.target
        parent, name = target.parent, target.name
        if not name:
            self.fail("is the root directory" if kind.directory else "is a directory; it names a file")
        if not kind.directory and text.endswith(("/", os.sep)):
            self.fail("ends with a slash: it names a directory, and this is a file")
        name_bytes = len(os.fsencode(name))
        if name_bytes > NAME_MAX:
            self.fail(f"the name is {name_bytes:,} bytes, over the limit of {NAME_MAX} bytes (NAME_MAX)")
        path_bytes = len(os.fsencode(str(target)))
        # the staged file is parent/STAGING/NAME, where a writer may put its own temporary NAME.XXXXXXXX.tmp
        room = STAGING_ROOM + (0 if kind.directory else name_bytes + 1 + 16)
        if path_bytes > PATH_MAX - 1 - room:
            self.fail(f"the path is {path_bytes:,} bytes, over the limit of {PATH_MAX - 1 - room:,} bytes for this "
                      f"name (PATH_MAX {PATH_MAX:,}, less the room its staging takes)")
        real_parent = os.path.realpath(parent)
        for root in NOT_FOR_OUTPUTS:
            if (real_parent == root or real_parent.startswith(root + "/")) and not any(
                    real_parent == ok or real_parent.startswith(ok + "/") for ok in FOR_OUTPUTS_UNDER_DEV):
                self.fail(f"cannot write there ({root} is not a file system for outputs)")
        shown = os.path.dirname(text.rstrip("/")) or "."
        try:
            pst = os.stat(parent)
        except FileNotFoundError:
            self.fail(f"directory {shown} does not exist")
        except NotADirectoryError:
            self.fail(f"{shown} is not a directory")
        except OSError as exc:
            self.fail(f"cannot reach directory {shown} ({exc.strerror})")
        if not stat.S_ISDIR(pst.st_mode):
            self.fail(f"{shown} is not a directory")
        limit = NAME_MAX
        with contextlib.suppress(OSError, ValueError, AttributeError):
            limit = min(limit, os.pathconf(parent, "PC_NAME_MAX"))
        if name_bytes > limit:  # a file system with shorter names
            self.fail(f"the name is {name_bytes:,} bytes, over this file system's limit of {limit} bytes (NAME_MAX)")
        if not os.access(parent, os.W_OK | os.X_OK):
            self.fail(f"cannot write in {shown} (permission denied)")
        with contextlib.suppress(OSError, AttributeError):
            if os.statvfs(parent).f_flag & os.ST_RDONLY:
                self.fail(f"cannot write in {shown} (read-only file system)")
        if clean:
            clean_stale(target)
        self._check_existing(target, kind)
        return target

    def _check_existing(self, target: Path, kind: Kind) -> None:
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.fail(f"cannot read it ({exc.strerror})")
        if stat.S_ISLNK(st.st_mode):
            self.fail(f"is a symbolic link (to {os.readlink(target)}); name the {'directory' if kind.directory else 'file'} "
                      f"itself")
        if kind.directory:
            if not stat.S_ISDIR(st.st_mode):
                self.fail("exists and is not a directory")
            try:
                cwd = os.path.realpath(os.getcwd())
            except OSError:
                cwd = ""
            real = os.path.realpath(target)
            if cwd == real or cwd.startswith(real.rstrip(os.sep) + os.sep):
                self.fail("is the working directory or holds it; name a new directory")
            try:
                empty = not any(os.scandir(target))
            except OSError as exc:
                self.fail(f"cannot read the directory ({exc.strerror})")
            if empty:
                return
            if not self.force:
                self.fail("directory exists and is not empty (choose a new one, or --force to replace it)")
        else:
            if stat.S_ISDIR(st.st_mode):
                self.fail(f"is a directory; {self.option or 'this'} names a file")
            if not stat.S_ISREG(st.st_mode):
                self.fail(f"exists and is not a regular file ({_describe(st.st_mode)})")
            if st.st_size == 0:
                return
            if not self.force:
                self.fail(f"exists (give --force to replace it{self.hint})")
        if kind.recognise is not None and not kind.recognise(target):
            self.fail(f"exists and is not {kind.what}; --force replaces only an earlier output of this kind "
                      f"(remove it yourself, or choose another name)")

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def staged(self):
        """``with output.staged() as tmp:`` write the output at ``tmp`` (a FILE: a path to create, inside a
        private staging directory; a DIR: the staging directory itself); it is renamed into place when
        the block ends without an exception, after the checks run again. On an exception the staging
        entry is removed and the target left as it was; an OSError (a full disk, a permission) becomes a
        one-line SpikeportError saying nothing was written."""
        target = self.check()
        kind = self.spec
        stage = target.parent / _staging_name(target.name)
        try:
            os.mkdir(stage, 0o700)
            if kind.directory:
                os.chmod(stage, user_mode(directory=True))  # DIR gets what mkdir would give
        except OSError as exc:
            self.fail(f"cannot write it ({exc.strerror or exc}); nothing was written")
        try:
            yield stage if kind.directory else stage / target.name
            self.check(clean=False)  # the target may have changed while the work ran
            if kind.directory:
                _publish_dir(stage, target)
            else:
                made = stage / target.name
                if not made.is_file():
                    raise RuntimeError(f"{self.label}: the writer left no file at the staging path")
                _fsync(made)
                _publish_file(made, target)
                _remove(stage)
            _fsync(target.parent)
        except OSError as exc:
            _remove_quietly(stage)
            self.fail(f"cannot write it ({exc.strerror or exc}); nothing was written")
        except BaseException:
            _remove_quietly(stage)
            raise

    def write(self, write: Callable) -> Path:
        """``write(binary_file)`` into the staged file; returns the path (as given)."""
        with self.staged() as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as f:
                write(f)
        return Path(os.fspath(self.path))

    def save(self, save: Callable) -> Path:
        """``save(path)`` writes the file at ``path`` (for writers that take a path: save_network,
        nir.write); returns the path (as given)."""
        with self.staged() as tmp:
            save(tmp)
        return Path(os.fspath(self.path))

    def write_text(self, text: str) -> Path:
        return self.write(lambda f: f.write(text.encode()))

    def write_json(self, data) -> Path:
        return self.write_text(json.dumps(data, indent=2) + "\n")


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        _remove(path)


def _publish_file(made: Path, target: Path) -> None:
    """The complete staged file into place (one rename)."""
    os.replace(made, target)


def _publish_dir(stage: Path, target: Path) -> None:
    """The complete staged DIR into place: renamed where the target is absent or empty, else swapped
    with the old DIR in one step (or, where the system cannot swap, the old DIR moved aside as a staging
    entry first: a run killed between the two renames has it put back by the next check), then the old
    one removed."""
    if not os.path.lexists(target):
        os.rename(stage, target)
        return
    if not any(os.scandir(target)):
        os.rmdir(target)
        os.rename(stage, target)
        return
    if _exchange(stage, target):  # stage now holds the old DIR, under its staging name
        shutil.rmtree(stage, ignore_errors=True)
        return
    old = target.parent / _staging_name(target.name, "old")
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- the Python API's writers

def write_file(path, write: Callable, *, option: str | None = None, kind="file", force: bool = True) -> Path:
    """``write(binary_file)`` to ``path`` staged and renamed into place (the Python API's writers: an
    existing file replaced unless it is not a regular file)."""
    return Output(path, option, kind, force).write(write)


def save_file(path, save: Callable, *, option: str | None = None, kind="file", force: bool = True) -> Path:
    """``save(staging_path)`` for ``path``, staged and renamed into place."""
    return Output(path, option, kind, force).save(save)
