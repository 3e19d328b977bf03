"""The command line: a thin shell over the Python API.

Exit status: 0 on success; 2 on a user error, with one line ``error: ...`` on
stderr naming the file, layer or limit; 1 on an internal error (a bug).

One module per group of commands (``training``: train, fit-nsp, methods; ``conversion``:
convert; ``running``: simulate, validate, export; ``deployment``: demo, deploy, power,
targets), what they share in ``common``, and the parser in ``parser``.
"""
from __future__ import annotations

import os
import sys

from ..errors import SpikeportError
from .parser import build_parser, reference_markdown

__all__ = ["build_parser", "main", "reference_markdown"]


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.max_memory is not None:
            from ..budget import set_limit
            set_limit(args.max_memory)
        return args.func(args)
    except SpikeportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (| head): the outputs were written first; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
