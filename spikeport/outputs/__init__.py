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

This package imports nothing of spikeport but :mod:`spikeport.errors`: every layer may use it.

The package: :mod:`.kinds` (what an output is and how an earlier one is recognised), :mod:`.staging`
(staging entries, their processes, the renames) and here the :class:`Output` and the API's writers.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import SpikeportError
from .kinds import KINDS, Kind
from .staging import (NAME_MAX, PATH_MAX, STAGING_ROOM, clean_stale, exchange_entries, fsync_path, remove_entry,
                      staging_entries, staging_name, user_mode)

__all__ = ["Output", "Kind", "KINDS", "NAME_MAX", "PATH_MAX", "STAGING_ROOM", "clean_stale", "staging_entries",
           "write_file", "save_file", "user_mode"]

NOT_FOR_OUTPUTS = ("/proc", "/sys", "/dev")
FOR_OUTPUTS_UNDER_DEV = ("/dev/shm",)   # a tmpfs: a place for files


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
        stage = target.parent / staging_name(target.name)
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
                fsync_path(made)
                _publish_file(made, target)
                remove_entry(stage)
            fsync_path(target.parent)
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


def _describe(mode: int) -> str:
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        remove_entry(path)


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
    if exchange_entries(stage, target):  # stage now holds the old DIR, under its staging name
        shutil.rmtree(stage, ignore_errors=True)
        return
    old = target.parent / staging_name(target.name, "old")
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
