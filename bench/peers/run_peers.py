"""Peer benchmark: SpikingJelly 2.0.0 and sinabs 3.1.3 convert the SAME trained LeNet.

Runs inside the peers' own venv (.venv-peers), never in spikeport's:

    .venv-peers/bin/python bench/peers/run_peers.py [--data-dir out/bench] [--dataset mnist|fashion-mnist]
        [--out FILE (default DATA_DIR/peers.json for mnist, DATA_DIR/peers-DATASET.json otherwise)]

Inputs (written by bench/peers/export_inputs.py in spikeport's main venv):
``lenet-DATASET-state.pt`` (plain state dict), ``DATASET-test.npz`` (the official 10,000 test
images, float32 in [0, 1]) and ``DATASET-train-calib.npz`` (the first 5,000 training images,
the calibration data of the peers' data-based normalization); DATASET is mnist by default.

For every peer configuration: convert, then simulate the test set with analog input (the
same image is the input current at every step) for one run of max(T) steps per batch of
100, reading the accumulated output at each T of --steps out of that one run. The class is
plain ``torch.argmax`` of the accumulated output, as the peers' own examples do; on a tie
torch.argmax returns the FIRST maximal index (the lowest class), which is counted and
reported as ``tied_fraction_by_T`` but neither favoured nor penalised. Throughput: image-steps
per second of the peer's simulation at batch 100, T = 100 (best of 3 timed runs after a
warm-up), on the CPU with torch's default thread count (recorded).

Only spikeport's pure-torch architecture builder is imported from the repository
(``spikeport.models.architectures``: numpy and torch only), to rebuild the nn.Sequential
whose state dict was saved.
"""
import argparse
import copy
import json
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from spikeport.models.architectures import ArchSpec, build  # noqa: E402  (numpy + torch only)

STEPS = (4, 8, 16, 32, 64, 128, 256)
BATCH = 100
THROUGHPUT_T = 100
TIE_RULE = ("plain torch.argmax of the accumulated output; on a tie it returns the first maximal "
            "index (lowest class); ties are counted in tied_fraction_by_T, not resolved in the peer's favour")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# data and the ANN

def load_inputs(data_dir: Path, dataset: str = "mnist"):
    test = np.load(data_dir / f"{dataset}-test.npz")
    calib = np.load(data_dir / f"{dataset}-train-calib.npz")
    state = torch.load(data_dir / f"lenet-{dataset}-state.pt", map_location="cpu", weights_only=True)
    ann = build(ArchSpec("lenet", (1, 28, 28), 10))
    ann.load_state_dict(state, strict=True)
    ann.eval()
    x = torch.from_numpy(test["x"]).float()
    y = torch.from_numpy(test["y"]).long()
    xc = torch.from_numpy(calib["x"]).float()
    assert x.shape == (10000, 1, 28, 28) and xc.shape[1:] == (1, 28, 28), (x.shape, xc.shape)
    return ann, x, y, xc


def ann_accuracy(ann, x, y):
    with torch.no_grad():
        pred = torch.cat([ann(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).float().mean())


def sweep(run_batch, x, y, steps, batch=BATCH):
    """Accuracy, tie fraction, seconds and the predictions (space-separated classes, test order) at each T
    of ``steps``, from one run of max(steps) per batch.

    ``run_batch(xb, T, steps)`` returns the accumulated outputs (len(steps), B, classes) at the T of
    ``steps`` (cumulative sums of the per-step outputs).
    """
    correct = np.zeros(len(steps))
    tied = np.zeros(len(steps))
    predicted = []
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        acc = run_batch(xb, max(steps), steps)
        top = acc.max(dim=2, keepdim=True).values
        tied += ((acc == top).sum(dim=2) > 1).sum(dim=1).numpy()
        correct += (acc.argmax(dim=2) == yb[None, :]).sum(dim=1).numpy()
        predicted.append(acc.argmax(dim=2).numpy())
        if (i // batch) % 20 == 19:
            log(f"    {i + batch}/{len(x)} images, {time.perf_counter() - t0:.0f} s")
    n = len(x)
    predicted = np.concatenate(predicted, axis=1)  # (len(steps), n): kept for paired comparisons
    return ({str(t): float(c / n) for t, c in zip(steps, correct)},
            {str(t): float(c / n) for t, c in zip(steps, tied)}, time.perf_counter() - t0,
            {str(t): " ".join(map(str, p.tolist())) for t, p in zip(steps, predicted)})


def throughput(run_steps, xb, T=THROUGHPUT_T, repeats=3):
    """Image-steps per second of ``run_steps(xb, T)`` (reset + T steps), best of ``repeats``."""
    run_steps(xb, 5)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_steps(xb, T)
        times.append(time.perf_counter() - t0)
    return len(xb) * T / min(times), times


# ----------------------------------------------------------------------------------------------
# SpikingJelly 2.0.0: ann2snn.Converter (= FXConverter) with RateCodingRecipe

def spikingjelly_configs(ann, xc, x, y):
    from spikingjelly.activation_based import ann2snn, functional

    calib_batches = [xc[i:i + BATCH] for i in range(0, len(xc), BATCH)]

    def convert(mode):
        recipe = ann2snn.RateCodingRecipe(dataloader=calib_batches, mode=mode)
        t0 = time.perf_counter()
        snn = ann2snn.Converter(recipe=recipe, device="cpu").convert(copy.deepcopy(ann))
        convert_s = time.perf_counter() - t0
        scales = {name: float(m.scale) for name, m in snn.named_modules()
                  if type(m).__name__ == "VoltageScaler" and name.endswith("scaler1")}
        return snn, convert_s, scales

    def make_runner(snn):
        # Single-step mode, exactly as SpikingJelly's ann2snn MNIST example evaluates:
        # reset_net, then net(img) once per step with the same analog image, output summed.
        def run_batch(xb, T, checkpoints):
            functional.reset_net(snn)
            out, kept = None, []
            with torch.no_grad():
                for t in range(1, T + 1):
                    step = snn(xb)
                    out = step.clone() if out is None else out + step
                    if t in checkpoints:
                        kept.append(out.clone())
            return torch.stack(kept) if kept else out

        def run_steps(xb, T):
            run_batch(xb, T, checkpoints=())

        return run_batch, run_steps

    for mode in ("max", "99.9%"):
        yield mode, convert, make_runner, (
            f"ann2snn.Converter(RateCodingRecipe(dataloader=5,000 calibration images in batches of {BATCH}, "
            f"mode={mode!r})): VoltageHook records the per-batch "
            + ("maximum" if mode == "max" else "99.9th percentile (torch.quantile over the whole batch tensor)")
            + " of each ReLU's output and keeps an exponential moving average (momentum 0.1, the default) "
              "over the calibration batches; ReLU -> VoltageScaler(1/s) - IFNode(v_threshold 1, soft reset) - "
              "VoltageScaler(s). The output layer fc2 has no neuron: its analog output is summed over the steps "
              "(as in SpikingJelly's MNIST example), so the readout is accumulated output current, not spike "
              "counts. Simulated in single-step mode (step_mode 's'), one call per step.")


# ----------------------------------------------------------------------------------------------
# sinabs 3.1.3: sinabs.utils.normalize_weights + sinabs.from_torch.from_model

SINABS_CHUNK = 64  # time steps per forward call (the IAF state carries across calls)


def sinabs_configs(ann, xc, x, y):
    from sinabs.from_torch import from_model
    from sinabs.utils import normalize_weights

    def convert(percentile):
        t0 = time.perf_counter()
        normed = copy.deepcopy(ann)
        # Rueckauer et al. layer by layer, as sinabs.utils.normalize_weights implements it: the
        # `percentile` of each layer's output over all its values for the calibration images
        # (np.percentile, zeros included) divides that layer's weights and bias. The output
        # layer fc2 is normalized too (its own output), so that the spiking output layer that
        # from_model adds sees the same scale.
        normalize_weights(normed, xc, output_layers=["relu1", "relu2", "relu3", "fc2"],
                          param_layers=["conv1", "conv2", "fc1", "fc2"], percentile=percentile)
        net = from_model(normed, input_shape=(1, 28, 28), add_spiking_output=True, batch_size=BATCH)
        convert_s = time.perf_counter() - t0
        with torch.no_grad():  # normalize_weights divides all of a layer's parameters by one number
            divisors = {name: float(ann.get_submodule(name).weight.abs().max()
                                    / normed.get_submodule(name).weight.abs().max())
                        for name in ("conv1", "conv2", "fc1", "fc2")}
        # normalize_weights divides each layer's weights AND bias by its percentile but does not
        # multiply the bias by the previous layer's divisor, so with biases the normalized ANN is
        # not the trained function: its accuracy is recorded.
        calib = {"divisor_per_layer": divisors, "normalized_ann_accuracy": ann_accuracy(normed, x, y)}
        return net, convert_s, calib

    def make_runner(net):
        # sinabs' IAFSqueeze layers take (batch * time, ...) tensors; the analog image is repeated
        # over the time steps, and the output spikes of the added spiking output layer are summed
        # (the sinabs MNIST conversion tutorial's readout). from_model ran a forward pass to infer
        # shapes, so the states are reset before each batch.
        def run_batch(xb, T, checkpoints):
            net.reset_states()
            b = len(xb)
            outs = []
            with torch.no_grad():
                for t0 in range(0, T, SINABS_CHUNK):
                    n = min(SINABS_CHUNK, T - t0)
                    inp = xb[:, None].expand(b, n, *xb.shape[1:]).reshape(b * n, *xb.shape[1:])
                    outs.append(net(inp).reshape(b, n, -1))
            counts = torch.cat(outs, dim=1).cumsum(dim=1)
            return torch.stack([counts[:, t - 1] for t in checkpoints]) if checkpoints else counts

        def run_steps(xb, T):
            net.reset_states()
            b = len(xb)
            with torch.no_grad():
                net(xb[:, None].expand(b, T, *xb.shape[1:]).reshape(b * T, *xb.shape[1:]))

        return run_batch, run_steps

    for p in (99, 99.9, 100):  # 99: normalize_weights' default percentile
        yield f"p{p:g}", (lambda p=p: convert(p)), make_runner, (
            f"sinabs.utils.normalize_weights(percentile={p:g}{', its default' if p == 99 else ''}) on the 5,000 "
            "calibration images (one forward "
            "pass per layer), then sinabs.from_torch.from_model(add_spiking_output=True) with its defaults: "
            "IAFSqueeze, spike_threshold 1, spike_fn MultiSpike (a neuron may emit several spikes in one step), "
            "reset MembraneSubtract, min_v_mem -1. Readout: output spike counts summed over the steps (as in "
            f"sinabs' MNIST conversion tutorial). Simulated {SINABS_CHUNK} steps per forward call for the "
            "sweep (state carries over), all 100 steps in one call for the throughput figure.")


# ----------------------------------------------------------------------------------------------

def markdown(results, steps):
    head = "| peer | config | " + " | ".join(f"T={t}" for t in steps) + " | image-steps/s (B=100, T=100) |"
    lines = [head, "|---|---|" + "---|" * len(steps) + "---|"]
    for peer in ("spikingjelly", "sinabs"):
        for config, r in results.get(peer, {}).items():
            if "error" in r:
                lines.append(f"| {peer} | {config} | " + " | ".join("n/a" for _ in steps) + f" | {r['error'][:60]} |")
                continue
            lines.append(f"| {peer} {r['version']} | {config} | "
                         + " | ".join(f"{r['accuracy_by_T'][str(t)]:.2%}" for t in steps)
                         + f" | {r['image_steps_per_s']:,.0f} |")
    lines.append(f"\nANN (the same state dict, no spikes): {results['ann_accuracy']:.2%}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="out/bench")
    ap.add_argument("--dataset", default="mnist", help="which exported inputs: DATASET-test.npz, "
                    "DATASET-train-calib.npz, lenet-DATASET-state.pt (mnist or fashion-mnist)")
    ap.add_argument("--out", default=None, help="default: DATA_DIR/peers.json for mnist, "
                    "DATA_DIR/peers-DATASET.json otherwise")
    ap.add_argument("--steps", default=",".join(map(str, STEPS)))
    ap.add_argument("--samples", type=int, default=None, help="first N test images (default: all 10,000)")
    ap.add_argument("--peers", default="spikingjelly,sinabs")
    ap.add_argument("--configs", default=None,
                    help="only these configurations, e.g. 'sinabs:p100,spikingjelly:max' (default: all); "
                         "entries already in --out for other configurations are kept")
    ap.add_argument("--throughput-only", action="store_true",
                    help="convert and measure throughput only; print {peer: {config: image-steps/s}} as JSON")
    args = ap.parse_args()
    steps = tuple(int(s) for s in args.steps.split(","))
    wanted = set(args.configs.split(",")) if args.configs else None
    known = {f"{peer}:{c}" for peer, cs in (("spikingjelly", ("max", "99.9%")), ("sinabs", ("p99", "p99.9", "p100")))
             for c in cs if peer in args.peers.split(",")}
    if wanted and wanted - known:
        ap.error(f"--configs: unknown {', '.join(sorted(wanted - known))} (known: {', '.join(sorted(known))})")
    if args.out is None:
        args.out = str(Path(args.data_dir) / ("peers.json" if args.dataset == "mnist" else f"peers-{args.dataset}.json"))

    started = time.perf_counter()
    ann, x, y, xc = load_inputs(Path(args.data_dir), args.dataset)
    if args.samples:
        x, y = x[:args.samples], y[:args.samples]
    results = {
        "ann_accuracy": ann_accuracy(ann, x, y),
        "meta": {
            "dataset": args.dataset, "test_images": len(x), "calibration_images": len(xc), "batch": BATCH, "steps": list(steps),
            "input": "analog: the image (float32 in [0, 1]) is the input of the first layer at every step",
            "readout": TIE_RULE,
            "throughput": f"image-steps/s of the simulation only (reset + {THROUGHPUT_T} steps) at batch {BATCH}, "
                          "best of 3 timed runs after a 5-step warm-up, first 100 test images",
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(), "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
        },
    }
    log(f"ANN accuracy {results['ann_accuracy']:.4f} on {len(x)} test images; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads")
    out = Path(args.out)
    if wanted and out.exists() and not args.throughput_only:
        # a partial rerun adds to the earlier file, if that file measured the same thing
        earlier = json.loads(out.read_text())
        same = {k: earlier["meta"].get(k) == results["meta"][k] for k in ("dataset", "test_images", "steps")}
        if not all(same.values()):
            ap.error(f"{out}: measured something else ({', '.join(k for k, v in same.items() if not v)} "
                     "differ); pass another --out")
        for peer in ("spikingjelly", "sinabs"):
            if peer in earlier:
                results[peer] = earlier[peer]

    def save():  # after every configuration, atomically: a stopped run keeps what it measured
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(out)

    makers = {"spikingjelly": spikingjelly_configs, "sinabs": sinabs_configs}
    for peer in args.peers.split(","):
        results.setdefault(peer, {})
        for config, convert, make_runner, notes in makers[peer](ann, xc, x, y):
            if wanted is not None and f"{peer}:{config}" not in wanted:
                continue
            log(f"{peer} {config}: converting")
            entry = {"version": version(peer), "notes": notes}
            try:
                snn, convert_s, scales = convert(config) if peer == "spikingjelly" else convert()
                run_batch, run_steps = make_runner(snn)
                ips, times = throughput(run_steps, x[:BATCH])
                if args.throughput_only:
                    results[peer][config] = {"image_steps_per_s": ips, "run_seconds": times}
                    continue
                log(f"{peer} {config}: {ips:,.0f} image-steps/s; sweeping {len(x)} images to T={max(steps)}")
                acc, tied, sweep_s, predicted = sweep(run_batch, x, y, steps)
            except Exception as exc:  # a peer that cannot do a configuration is reported, not hidden
                entry["error"] = f"{type(exc).__name__}: {exc}"
                log(f"{peer} {config}: FAILED {entry['error']}")
                results[peer][config] = entry
                continue
            entry.update({"accuracy_by_T": acc, "tied_fraction_by_T": tied, "image_steps_per_s": ips,
                          "throughput_run_seconds": times, "convert_seconds": convert_s,
                          "sweep_seconds": sweep_s, "calibration": scales,
                          "predictions_by_T": predicted})
            results[peer][config] = entry
            if not args.throughput_only:
                save()
            log(f"{peer} {config}: " + ", ".join(f"T={t} {acc[str(t)]:.4f}" for t in steps)
                + f" ({sweep_s:.0f} s)")
    results["meta"]["total_seconds"] = time.perf_counter() - started
    if args.throughput_only:
        print(json.dumps({peer: results[peer] for peer in args.peers.split(",")}))
        return
    save()
    print(markdown(results, steps))
    print(f"\n{len(x)} test images, analog input, batch {BATCH}; torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; total {results['meta']['total_seconds']:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
