"""The kinds of output (:class:`Kind`) and how an earlier output of each is recognised: what ``--force``
may replace. Each test reads a few bytes or a zip's directory; nothing is unpickled or loaded."""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Kind", "KINDS"]


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
