"""A QCFS-trained model's ANN accuracy with its activations re-quantized to other levels.

    .venv/bin/python bench/qcfs_levels.py --model M.pt [--levels 16,32,1024]

An IF neuron over T steps with v(0) = theta / 2 rounds its rate to steps of 1/T where the
trained QCFS activation rounded to 1/L; this says what the network computes at other
levels (1024: practically without quantization), what the SNN approaches as T grows.
Full official test set of the model's data set.
"""
import argparse

import torch

import spikeport
from spikeport.models import load_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--levels", default="16,32,1024")
    args = ap.parse_args()
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    x, y = torch.as_tensor(ds.x("test")), torch.as_tensor(ds.y("test"))
    m = model.module.eval()
    qcfs = [mod for mod in m.modules() if hasattr(mod, "levels") and hasattr(mod, "lam")]
    if not qcfs:
        raise SystemExit(f"{args.model}: no QCFS activation")
    trained = qcfs[0].levels
    for levels in [trained] + [int(v) for v in args.levels.split(",")]:
        for mod in qcfs:
            mod.levels = levels
        with torch.no_grad():
            right = sum(int((m(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
        print(f"{args.model}: levels {levels}{' (trained)' if levels == trained else ''}: {right / len(x):.2%}")


if __name__ == "__main__":
    main()
