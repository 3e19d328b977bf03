"""A user's own PyTorch file as a module to convert: a state dict with its module's code, or TorchScript.

``spikeport convert FILE`` reads three kinds of PyTorch file besides spikeport's own model files:

- a state dict (``torch.save(model.state_dict(), FILE)``, or a checkpoint dict holding one under
  ``state_dict`` / ``model_state_dict`` / ``model``), with ``--model-def module:factory``: the
  user's code builds the module (``factory()``, importable from the working directory), the file
  gives only its weights, read with weights-only loading;
- TorchScript (``torch.jit.script(model).save(FILE)`` or ``torch.jit.trace``): its modules are
  rebuilt as plain torch modules, with their parameters, where the scripted module is an
  ``nn.Sequential`` (possibly nested) of layers the converter knows; a TorchScript module with
  its own ``forward`` needs its source (``--model-def``);
- a whole pickled module (``torch.save(model, FILE)``) is refused: unpickling runs code from the
  file. The message says how to save the same model in one of the forms above.

Errors are one line naming the file (and the module path or key at fault).
"""
from __future__ import annotations

import importlib
import re
import sys
import zipfile
from pathlib import Path

from ..errors import FileFormatError, SpikeportError

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain(message: str, limit: int = 200) -> str:
    """The first line of an exception's message without terminal colour codes, at most ``limit`` characters."""
    text = _ANSI.sub("", str(message)).strip()
    return (text.splitlines()[0] if text else "")[:limit]


def _zip_names(path: Path) -> list:
    from ..budget import regular_file

    regular_file(path, "model file", FileFormatError)     # a FIFO or a device would block or never end
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (OSError, zipfile.BadZipFile):
        return []


def is_torchscript(path) -> bool:
    """TorchScript archives hold the module's code (``ARCHIVE/code/...``) beside its data."""
    return any("/code/" in n and n.endswith(".py") for n in _zip_names(Path(path)))


def load_user_module(path, model_def: str | None = None):
    """The ``nn.Module`` a user's PyTorch file describes (module docstring), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    if is_torchscript(path):
        if model_def is not None:
            return _with_state(path, _factory(model_def, path), _script_state(path))
        return _from_torchscript(path)
    if model_def is None:
        raise FileFormatError(_what_it_needs(path))
    return _with_state(path, _factory(model_def, path), _state_dict(path))


def _what_it_needs(path: Path) -> str:
    """The one line for a PyTorch file given without --model-def: what it holds and how to convert it."""
    import torch

    import warnings

    try:
        with warnings.catch_warnings():      # torch's notes on the pickle protocol: the one line below says it
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for files it cannot read weights-only
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            return (f"{path}: holds a pickled module (torch.save(model)); spikeport never runs code from a file: "
                    f"save model.state_dict() and give its class with --model-def module:factory, or save "
                    f"TorchScript (torch.jit.script(model).save(FILE))")
        return f"{path}: not a model file spikeport can read ({plain(exc, 160)})"
    if _find_state(payload) is not None:
        return (f"{path}: holds a state dict (weights only): give the code that builds its module with "
                f"--model-def module:factory (factory() returns the nn.Module the weights fit)")
    return f"{path}: not a spikeport model file, a state dict or TorchScript"


def _find_state(payload):
    import torch

    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return payload
    if isinstance(payload, dict):
        for key in STATE_DICT_KEYS:
            inner = payload.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    return None


def _state_dict(path: Path) -> dict:
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise FileFormatError(f"{path}: cannot be read with weights-only loading ({plain(exc, 160)}); --model-def "
                              f"takes a state dict file (torch.save(model.state_dict(), FILE))") from None
    state = _find_state(payload)
    if state is None:
        raise FileFormatError(f"{path}: holds no state dict (a dict of tensors, or one under "
                              f"{', '.join(repr(k) for k in STATE_DICT_KEYS)})")
    return state


def _script_state(path: Path) -> dict:
    import torch

    try:
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except Exception as exc:  # noqa: BLE001
        raise FileFormatError(f"{path}: not a readable TorchScript file ({plain(exc, 160)})") from None


def _factory(model_def: str, path: Path):
    """``module:factory`` imported (the working directory first on the path) and called with no arguments."""
    import torch

    mod_name, sep, attr = model_def.partition(":")
    if not sep or not mod_name or not attr:
        raise SpikeportError(f"--model-def {model_def!r}: expected module:factory, e.g. mynet:build or "
                             f"pkg.models:Net")
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - the user's code: any error is theirs to see, in one line
        raise SpikeportError(f"--model-def {model_def!r}: cannot import {mod_name!r} ({type(exc).__name__}: "
                             f"{plain(exc, 160)})") from None
    finally:
        if added:
            sys.path.remove(cwd)
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise SpikeportError(f"--model-def {model_def!r}: {mod_name!r} has no {attr!r}")
        factory = getattr(factory, part)
    try:
        net = factory()
    except Exception as exc:  # noqa: BLE001
        raise SpikeportError(f"--model-def {model_def!r}: {attr}() failed ({type(exc).__name__}: {plain(exc, 160)})") from None
    if not isinstance(net, torch.nn.Module):
        raise SpikeportError(f"--model-def {model_def!r}: {attr}() returned a {type(net).__name__}, not an nn.Module")
    return net


def _with_state(path: Path, net, state: dict):
    missing, unexpected = [], []
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}"] if unexpected else [])
        raise FileFormatError(f"{path}: the weights do not fit the module --model-def builds ({'; '.join(parts)})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise FileFormatError(f"{path}: {key} has shape {tuple(value.shape)}, the module's has "
                                  f"{tuple(own[key].shape)}")
    net.load_state_dict(state, strict=True)
    return net.eval()


# ----------------------------------------------------------------------------- TorchScript

def _from_torchscript(path: Path):
    """An nn.Sequential (possibly nested) of known layers, rebuilt from a TorchScript file."""
    import torch

    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise FileFormatError(f"{path}: not a readable TorchScript file ({plain(exc, 160)})") from None
    return _rebuild(scripted, path, "the top module").eval()


def _rebuild(sm, path: Path, where: str):
    import torch.nn as nn

    kind = getattr(sm, "original_name", type(sm).__name__)
    attr = lambda name: getattr(sm, name)  # noqa: E731
    try:
        if kind == "Sequential":
            return nn.Sequential(*[_rebuild(child, path, f"{where}.{name}") for name, child in sm.named_children()])
        if kind == "Linear":
            m = nn.Linear(attr("in_features"), attr("out_features"), bias=sm.bias is not None)
        elif kind == "Conv2d":
            m = nn.Conv2d(attr("in_channels"), attr("out_channels"), tuple(attr("kernel_size")), stride=tuple(attr("stride")),
                          padding=attr("padding") if isinstance(attr("padding"), str) else tuple(attr("padding")),
                          dilation=tuple(attr("dilation")), groups=attr("groups"), bias=sm.bias is not None,
                          padding_mode=attr("padding_mode"))
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            m = getattr(nn, kind)(attr("num_features"), eps=attr("eps"), affine=sm.weight is not None)
        elif kind in ("AvgPool2d", "MaxPool2d"):
            keys = ("kernel_size", "stride", "padding", "ceil_mode") + (("count_include_pad",) if kind == "AvgPool2d" else ())
            m = getattr(nn, kind)(**{k: attr(k) for k in keys})
        elif kind == "Flatten":
            m = nn.Flatten(attr("start_dim"), attr("end_dim"))
        elif kind in ("ReLU", "Identity", "Dropout"):
            m = getattr(nn, kind)()
        elif kind == "ReLU6":
            m = nn.ReLU6()
        else:
            raise SpikeportError(f"{path}: TorchScript {where} is a {kind} with its own forward; spikeport rebuilds "
                                 f"TorchScript made of nn.Sequential and standard layers: give its source with "
                                 f"--model-def module:factory (the file's weights are used)")
    except AttributeError as exc:
        raise FileFormatError(f"{path}: TorchScript {where} ({kind}) lacks {plain(exc, 80)}") from None
    own = m.state_dict()
    state = {k: v for k, v in sm.state_dict().items()}
    if set(state) != set(own):
        raise FileFormatError(f"{path}: TorchScript {where} ({kind}) holds {sorted(state)}, expected {sorted(own)}")
    m.load_state_dict(state, strict=True)
    return m
