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
import json
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

    import torch

    import spikeport
    from spikeport.models.architectures import ArchSpec
    from spikeport.models.methods import get_method
    from spikeport.models.training import (CHECKPOINT_FORMAT, TrainedModel, build_for, method_accuracy,
                                           save_model)

    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        print(f"error: {args.checkpoint}: not a spikeport checkpoint", file=sys.stderr)
        return 2
    settings, spec = json.loads(state["settings"]), ArchSpec.from_dict(json.loads(state["spec"]))
    history = json.loads(state["history"])
    weights = state["best_state_dict"] if state["best_state_dict"] is not None else state["state_dict"]
    module = build_for(settings, spec)
    module.load_state_dict(weights)
    module.eval()
    decl = get_method(settings["method"]).METHOD
    meta = {**settings, "train_seconds": round(float(state["seconds"]), 3), "history": history,
            "selected_epoch": state["best_epoch"] or state["epoch"], "val_accuracy": state["best_accuracy"],
            "snn": decl.snn.to_dict(), "citation": decl.citation,
            "partial": f"from the checkpoint after epoch {state['epoch']} of {settings['epochs']}"}
    if args.test:
        m = get_method(settings["method"])
        data = spikeport.load_dataset(settings["dataset"], data_dir=args.data_dir)
        t0 = time.perf_counter()
        meta["test_accuracy"] = method_accuracy(m, module, data.x("test"), data.y("test"),
                                                decl.resolve_options(settings["options"]), "cpu", settings["seed"])
        print(f"test accuracy {meta['test_accuracy']:.2%} ({time.perf_counter() - t0:.0f} s)")
    save_model(TrainedModel(module=module, spec=spec, meta=meta), args.out)
    print(f"epoch {meta['selected_epoch']} of {state['epoch']} done (validation {state['best_accuracy']:.2%}) "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
