import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def run_cli(*args, cwd=None, env=None, timeout=600):
    """Run the installed console script as a user would; returns CompletedProcess."""
    exe = Path(sys.executable).parent / "spikeport"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "spikeport"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)


def small_network(seed=0, neuron="if", reset="subtract", encoding="analog", delay=0, bias=True, syn=None, refractory=0):
    """A 3-population network with random dense weights (input 12 -> 9 -> 4)."""
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    rng = np.random.default_rng(seed)
    nm = NeuronModel(neuron, threshold=1.0, reset=reset, decay=0.95 if neuron == "lif" else 1.0, syn_decay=syn,
                     refractory_steps=refractory, v_init=0.1)
    w1 = (rng.normal(0, 0.5, (9, 12)) * (rng.random((9, 12)) > 0.3)).astype(np.float32)
    w2 = rng.normal(0, 0.6, (4, 9)).astype(np.float32)
    pops = [Population("input", (12,), encoding=InputEncoding(encoding, 400.0)),
            Population("h", (9,), neuron=nm, bias=rng.normal(0.05, 0.05, 9).astype(np.float32) if bias else None),
            Population("out", (4,), neuron=nm)]
    projs = [Projection("input->h", "input", "h", [Dense(w1)]),
             Projection("h->out", "h", "out", [Dense(w2)], delay_steps=delay)]
    return Network(pops, projs, dt_s=1e-3, input="input", output="out", metadata={"note": "test"}).validate()


def conv_network(seed=0, encoding="regular", delay=0):
    """input (2, 8, 8) -conv 3x3 pad 1 stride 2-> c (4, 4, 4) -[avgpool 2, flatten, dense]-> out (5),
    plus a residual input -[sumpool 2, flatten, dense]-> out."""
    from spikeport.ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population,
                              Projection, SumPool2d)

    rng = np.random.default_rng(seed)
    nm = NeuronModel("if", threshold=1.0, reset="subtract")
    pops = [Population("input", (2, 8, 8), encoding=InputEncoding(encoding, 500.0)),
            Population("c", (4, 4, 4), neuron=nm, bias=np.full((4, 4, 4), 0.02, np.float32)),
            Population("out", (5,), neuron=nm)]
    projs = [Projection("input->c", "input", "c",
                        [Conv2d(rng.normal(0, 0.4, (4, 2, 3, 3)).astype(np.float32), stride=2, padding=1)]),
             Projection("c->out", "c", "out", [AvgPool2d(2), Flatten(), Dense(rng.normal(0, 0.8, (5, 16)).astype(np.float32))],
                        delay_steps=delay),
             Projection("input->out", "input", "out",
                        [SumPool2d(2), Flatten(), Dense(rng.normal(0, 0.1, (5, 32)).astype(np.float32))])]
    return Network(pops, projs, input="input", output="out").validate()


@pytest.fixture(scope="session")
def digits_model_file(tmp_path_factory):
    """mlp 256-128 trained with relu on digits (seed 0, the whole training split: no validation
    split, the last of 60 epochs), saved as `spikeport train` saves it. The tests' measured
    numbers (calibration, L4) are of this model."""
    import spikeport
    from spikeport.models import save_model, train

    path = tmp_path_factory.mktemp("digits") / "model.pt"
    save_model(train(spikeport.load_dataset("digits"), arch="mlp", method="relu", seed=0, validation=0), path)
    return path


@pytest.fixture(scope="session")
def digits_model(digits_model_file):
    from spikeport.models import load_model

    return load_model(digits_model_file)


def digits_conv_model():
    """conv 8@3x3 - avgpool 2 - fc 64 - fc 10, trained with ReLU on digits for 12 epochs (~2 s), seeded:
    (module in eval mode, the digits Dataset). Also bench/core_counts.py's digits network."""
    from collections import OrderedDict

    import torch
    from torch import nn

    import spikeport

    ds = spikeport.load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 8, 3, padding=1), relu1=nn.ReLU(), pool1=nn.AvgPool2d(2),
                                      flatten=nn.Flatten(), fc1=nn.Linear(8 * 4 * 4, 64), relu2=nn.ReLU(),
                                      fc2=nn.Linear(64, 10)))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x, y = torch.as_tensor(ds.x("train")), torch.as_tensor(ds.y("train"))
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        for _ in range(12):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), 64):
                idx = order[i:i + 64]
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    return model.eval(), ds


GRID_BITS = 12


def on_dyadic_grid(net, bits=GRID_BITS):
    """``net`` with every weight, bias, threshold and initial membrane rounded to a multiple of
    2**-bits, in place; returns it.

    Why: a network trained inside a test differs from machine to machine and with the number
    of threads (PyTorch's reductions add in another order), and a membrane that lands exactly
    on a threshold is then rounded one way by the float32 reference and the other by a float64
    simulator (1 of 147,456 spikes in CI, issue 20). On the grid every sum a simulator forms is
    exact in both precisions, in any order, so spike-for-spike tests cannot fail by chance:
    inputs are spikes (0/1) or digits pixels (multiples of 1/16), average pools divide by 4,
    and the products stay multiples of 2**-(bits + 6) far below 2**(24 - bits - 6) in size.
    The helper refuses what would break that (a pool window that is not a power of two, a
    value too large for float32 to hold exactly on the grid, a LIF decay or synapse).
    """
    import dataclasses

    from spikeport.ir import NeuronModel

    q = float(2 ** bits)
    grid = lambda a: (np.round(np.asarray(a, np.float64) * q) / q).astype(np.float32)
    limit = 2.0 ** (24 - bits - 6)
    for proj in net.projections:
        for i, op in enumerate(proj.ops):
            if "weight" in op.arrays():
                proj.ops[i] = dataclasses.replace(op, weight=grid(op.weight))
            elif op.kind == "avgpool2d":
                k = op.kernel_size[0] * op.kernel_size[1]
                if k & (k - 1):
                    raise ValueError(f"{proj.name}: an average over {k} inputs is not exact on a dyadic grid")
    for pop in net.populations:
        if pop.is_input:
            continue
        nm = pop.neuron
        if nm.decay != 1.0 or nm.syn_decay is not None:
            raise ValueError(f"{pop.name}: a decay is not exact on a dyadic grid")
        pop.neuron = dataclasses.replace(nm, threshold=float(grid(nm.threshold)), v_init=float(grid(nm.v_init)))
        for what in ("bias", "v_init"):
            if getattr(pop, what) is not None:
                setattr(pop, what, grid(getattr(pop, what)))
        # the largest membrane: threshold, initial value, and one step's input at its largest
        # (every input at 1) with the bias, beyond the threshold
        reach = np.zeros(pop.size)
        for proj in net.projections_into(pop.name):
            syn = proj.materialize(net.population(proj.pre).shape)
            reach += np.bincount(syn.post, weights=np.abs(syn.weight), minlength=pop.size)
        if pop.bias is not None:
            reach += np.abs(pop.bias).reshape(-1)
        values = [abs(pop.neuron.threshold) + float(reach.max())] + \
            [float(np.abs(a).max()) for a in (pop.v_init,) if a is not None]
        if max(values) >= limit:
            raise ValueError(f"{pop.name}: membranes of {max(values):g} are too large to stay exact on the grid")
    return net.validate()


@pytest.fixture(scope="session")
def digits_conv_snn():
    """:func:`digits_conv_model` converted (percentile 99.9, analog input): the small conv + dense
    network every backend runs. Its weights depend on the machine's rounding (trained here), so
    spike-for-spike comparisons with it run the reference in float64, the simulators' precision."""
    from spikeport.models import convert

    model, ds = digits_conv_model()
    return convert(model, ds.x("train")[:512]), ds


def overflow_network():
    """(network, x): 300 synchronous input spikes of one threshold each exceed the 21-bit input of
    h's first neuron at each of the 10 steps of samples 0 and 2 (20 wrapped values); 10 do not
    (h's second neuron), nothing wraps in out, and sample 1 sends no spike."""
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    n = 300
    w = np.zeros((2, n), np.float32)
    w[0], w[1, :10] = 1.0, 1.0
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    net = Network([Population("input", (n,), encoding=InputEncoding("regular", 1000.0)),
                   Population("h", (2,), neuron=nm), Population("out", (2,), neuron=nm)],
                  [Projection("in->h", "input", "h", [Dense(w)]),
                   Projection("h->out", "h", "out", [Dense(np.eye(2, dtype=np.float32))])],
                  input="input", output="out").validate()
    x = np.ones((3, n), np.float32)
    x[1] = 0.0
    return net, x


@pytest.fixture(scope="module")
def frozen_heap():
    """Brian2 calls gc.collect() in every Network.run, which walks every object the session holds
    (tenths of a second a run once torch, NEST and nengo are loaded: most of a small network's run).
    The objects alive before the module are frozen out of that walk (gc.freeze); what the module
    makes is collected as ever. Modules that run Brian2 many times use it (autouse there)."""
    import gc

    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
