"""Simulator runtimes: the engines the backends run and ``deploy`` copies beside its scripts.

Every module of this package imports nothing of spikeport (only numpy, and the simulator
it drives, imported where used), and imports its siblings relatively, so that the whole
folder works both as ``spikeport.runtimes`` and as a copy named ``spikeport_runtime`` next
to an emitted script on a machine without spikeport.

- :mod:`.readout`: the readout's tie rule, the one place it is written.
- :mod:`.brian2_engine`: the Brian2 engine (the brian2 backend's, and ``run_brian2.py``'s).
- :mod:`.pynn_engine`: the PyNN engine (the PyNN lowering's building blocks, and
  ``run_spinnaker.py``'s).
- :mod:`.loihi`, :mod:`.loihi_chip`, :mod:`.loihi_nengo`: the Nengo-Loihi engine (the network
  built from its description, the chip's registers, spike delivery and the lag-shifted
  readout; the nengo-loihi backend's, and ``run_loihi.py``'s).

The scripts ``run_*.py`` of this folder are what ``deploy`` writes beside their data, as
they are; :func:`install` copies the engines a script needs into ``spikeport_runtime/``.
"""
PACKAGE = "spikeport_runtime"  # the name of the copy beside an emitted script


def write_json(path, data, fail) -> None:
    """``data`` as JSON into ``path``; an OSError becomes ``fail("cannot write PATH: why")`` (the
    script's one-line error)."""
    import json

    try:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
    except OSError as exc:
        raise fail("cannot write %s: %s" % (path, exc))


def installed(out_dir, *modules):
    """The paths :func:`install` writes for ``modules`` into ``out_dir``."""
    from pathlib import Path

    return [Path(out_dir) / PACKAGE / (name + ".py") for name in dict.fromkeys(("__init__", "readout") + modules)]


def install(out_dir, *modules):
    """Copy this package's ``__init__`` and ``readout`` and ``modules`` (names without ``.py``)
    into ``out_dir``/spikeport_runtime; returns the paths written."""
    import shutil
    from pathlib import Path

    here = Path(__file__).resolve().parent
    written = installed(out_dir, *modules)
    written[0].parent.mkdir(parents=True, exist_ok=True)
    for path in written:
        shutil.copyfile(here / path.name, path)
    return written


def script_text(name):
    """The text of the script ``name`` (e.g. "run_brian2.py") of this folder."""
    from pathlib import Path

    return (Path(__file__).resolve().parent / name).read_text()
