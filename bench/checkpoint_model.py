"""A model file from a training checkpoint, while the run is still going (long runs in parts).

    python bench/checkpoint_model.py out/bench/methods/spikebp-mnist.pt.ckpt --out /tmp/sbp-e13.pt [--test]

The model is the checkpoint's best epoch so far by validation accuracy (what ``spikeport train`` would
return if the run ended now); its meta says which epoch of how many. ``--test`` scores it on the whole
test set with the method's own forward pass (for spike-bp and proxy: the spiking network in PyTorch, as
the training does), recorded as ``test_accuracy`` (the "ANN" accuracy ``spikeport convert`` carries).
The checkpoint is only read.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--test", action="store_true", help="score on the whole test set (the method's forward)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)

    import spikeport
    from spikeport.errors import SpikeportError
    from spikeport.models.methods import get_method
    from spikeport.models.training import method_accuracy, model_from_checkpoint, save_model

    try:
        model = model_from_checkpoint(args.checkpoint)
        meta = model.meta
        if args.test:
            m = get_method(meta["method"])
            data = spikeport.load_dataset(meta["dataset"], data_dir=args.data_dir)
            t0 = time.perf_counter()
            meta["test_accuracy"] = method_accuracy(m, model.module, data.x("test"), data.y("test"),
                                                    m.METHOD.resolve_options(meta["options"]), "cpu", meta["seed"])
            print(f"test accuracy {meta['test_accuracy']:.2%} ({time.perf_counter() - t0:.0f} s)")
        save_model(model, args.out)
    except SpikeportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    val = "" if meta["val_accuracy"] is None else f" (validation {meta['val_accuracy']:.2%})"
    print(f"epoch {meta['selected_epoch']}{val}, {meta['partial']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
