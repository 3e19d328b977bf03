"""One batch of a guarded simulator run (:mod:`spikeport.backends.batches`), in its own process:

    python -m spikeport.backends.batch_worker DIR FIRST END OUT

reads DIR/network.spk, DIR/x.npy and DIR/settings.json, runs samples FIRST .. END - 1 on the settings'
backend (Poisson trains from sample FIRST on, as in one run) and writes the Activity to OUT. Exit 0 when
done; otherwise one line on stderr and exit 2 (an error) or 1 (anything else)."""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


class _Progress:
    """The backend's progress, passed to the parent as lines ``progress N`` on stdout."""

    def update(self, n: int = 1) -> None:
        print(f"progress {int(n)}", flush=True)

    def set_total(self, total: int, done: int = 0) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def main(argv: list) -> int:
    import numpy as np

    from ..errors import SpikeportError
    from ..ir import load_network
    from ..outputs import write_file
    from . import get_backend
    from .activity import save_activity

    where, first, end, out = Path(argv[0]), int(argv[1]), int(argv[2]), Path(argv[3])
    try:
        settings = json.loads((where / "settings.json").read_text())
        network = load_network(where / "network.spk")
        x = np.load(where / "x.npy", mmap_mode="r", allow_pickle=False)[first:end]
        options = dict(settings["options"])  # as JSON holds them (the Loihi backend takes block shapes as lists)
        activity = get_backend(settings["backend"]).run(network, np.ascontiguousarray(x), settings["steps"],
                                                         seed=settings["seed"], sample0=first, record_counts=True,
                                                         progress=_Progress(), **options)
        write_file(out, lambda f: save_activity(activity, f))
    except SpikeportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the simulator's own failure, reported by the parent in one line
        traceback.print_exc(file=sys.stderr)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: {type(exc).__name__}{': ' + first_line if first_line else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
