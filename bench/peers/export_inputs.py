"""Write the inputs of the peer benchmark (runs in spikeport's MAIN venv).

    .venv/bin/python bench/peers/export_inputs.py [--model out/bench/lenet-mnist.pt] [--out-dir out/bench]

From the trained spikeport model file and spikeport's loader of DATASET, the data set the
model was trained on (mnist or fashion-mnist), it writes:

- ``DATASET-test.npz``: x float32 (10000, 1, 28, 28) in [0, 1], y int64 (the official test set);
- ``DATASET-train-calib.npz``: the first 5,000 training images and labels (calibration data
  for the peers' data-based normalization);
- ``lenet-DATASET-state.pt``: the plain state dict of the LeNet ``nn.Sequential``
  (``load_model(path).module.state_dict()``), plus ``lenet-DATASET-spec.json``, its ArchSpec.

The peers' venv reads only these files; it never imports spikeport's training or data code.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

import spikeport
from spikeport.models import load_model

CALIB_IMAGES = 5000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--out-dir", default="out/bench")
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    model = load_model(args.model)
    name = model.meta["dataset"]
    ds = spikeport.load_dataset(name)
    x_test, y_test = ds.x("test"), ds.y("test")
    x_train, y_train = ds.x("train")[:CALIB_IMAGES], ds.y("train")[:CALIB_IMAGES]
    assert x_test.shape == (10000, 1, 28, 28) and x_test.dtype == np.float32, x_test.shape
    assert 0.0 <= float(x_test.min()) and float(x_test.max()) <= 1.0
    np.savez(out / f"{name}-test.npz", x=x_test, y=y_test.astype(np.int64))
    np.savez(out / f"{name}-train-calib.npz", x=x_train, y=y_train.astype(np.int64))

    torch.save(model.module.state_dict(), out / f"lenet-{name}-state.pt")
    (out / f"lenet-{name}-spec.json").write_text(json.dumps(model.spec.to_dict()) + "\n")
    print(f"wrote {out}/{name}-test.npz ({len(y_test)} images, source {ds.source}), "
          f"{out}/{name}-train-calib.npz ({len(y_train)}), {out}/lenet-{name}-state.pt "
          f"(spikeport's recorded test accuracy {model.meta.get('test_accuracy')})")


if __name__ == "__main__":
    main()
