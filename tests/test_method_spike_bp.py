"""spike-bp (Lee et al. 2020): the spiking module trains, its backward is the authors' code's,
and the network it converts to is the module, step for step."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spikeport.backends import reference  # noqa: E402
from spikeport.ir import kernels  # noqa: E402
from spikeport.models.architectures import ArchSpec  # noqa: E402
from spikeport.models.methods import Context, get_method  # noqa: E402
from spikeport.models.methods import spike_bp  # noqa: E402
from spikeport.models.methods import spiking_window as window  # noqa: E402

ARCH = "8c3-p2-64"
STEPS = 20


@pytest.fixture(scope="module")
def digits():
    import spikeport

    return spikeport.load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits):
    from spikeport.models.training import train

    return train(digits, arch=ARCH, method="spike-bp", epochs=6, lr=1.5, seed=0, options={"steps": STEPS})


def _module(arch=ARCH, shape=(1, 8, 8), seed=0, **options):
    torch.manual_seed(seed)
    return spike_bp.build(ArchSpec(arch=arch, input_shape=shape, classes=10), options)


def _code_gradients(module, x, u, steps, weight_of_out):
    """d(sum(out * weight_of_out)) / d(weights), by a transcription of the authors' per-step
    autograd graph (src/mnist_LeNet.py: LIF_sNeuron, Pooling_sNeuron, LF_Unit, grad_cal and the
    hooks on every step's LIF output), with the graph's spike test U >= V_th."""
    lam, th = 0.99, 1.0
    plan = window._plan(module)
    batch = x.shape[0]
    p = window.poisson_probability(x, 500.0).to(x.dtype)

    class Spike(torch.autograd.Function):  # the code's SpikingNN: 1 where ex > 0, gradient passed there
        @staticmethod
        def forward(ctx, ex):
            ctx.save_for_backward(ex)
            return (ex > 0).to(ex.dtype)

        @staticmethod
        def backward(ctx, g):
            (ex,) = ctx.saved_tensors
            return g * (ex > 0).to(g.dtype)

    mem, lf, total, outs = {}, {}, {}, {}
    for t in range(steps):
        h = (u[t] < p).to(x.dtype).reshape(x.shape)
        for kind, name, child in plan:
            if kind in ("weighted", "output"):
                h = window._current(child, h)
                if kind == "output":
                    m = mem.get(name, 0) + h
                    mem[name] = lam * m.detach() + m - m.detach()
            elif kind in ("lif", "pool"):
                m = mem.get(name, 0) + h
                theta = child.threshold
                ex = m * (m >= theta).to(m.dtype)
                m = m - ex
                out = Spike.apply(ex)
                if kind == "lif":
                    m = lam * m.detach() + m - m.detach()
                    out = out.detach() + out / theta - (out / theta).detach()
                    lf[name] = lam * lf.get(name, 0) + out.detach()
                    total[name] = total.get(name, 0) + out.detach()
                    outs.setdefault(name, []).append(out)
                mem[name] = m
                h = out
            elif kind == "avgpool":
                h = child(h)
            else:
                h = h.reshape(batch, -1)
    for name, steps_out in outs.items():
        tot = total[name] + (total[name] < 1e-3).to(x.dtype)
        ng = (lf[name] > 1e-3).to(x.dtype) + math.log(lam) * lf[name] / tot  # the code's grad_cal
        for o in steps_out:
            o.register_hook(lambda g, ng=ng: g * ng)
    out = mem[window._output_name(plan)] / (th * steps)
    params = window._params(module)
    return torch.autograd.grad((out * weight_of_out).sum(), params)


# pooling windows that tile the map (read in place by the scan) and one that drops a row and a column
@pytest.mark.parametrize("arch,shape", [(ARCH, (1, 8, 8)), ("4c3-p2-6c3-16", (1, 12, 12)), ("4c2-p2-16", (1, 8, 8))])
def test_backward_is_the_authors_code(arch, shape):
    module = _module(arch, shape, seed=1, bias=True).double()
    for m in module.modules():
        if getattr(m, "bias", None) is not None:
            torch.nn.init.uniform_(m.bias, -0.05, 0.1)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand((5,) + shape, generator=gen, dtype=torch.float64)
    steps = 12
    u = torch.rand((steps, 5, x[0].numel()), generator=gen)
    weight_of_out = torch.randn(5, 10, generator=gen, dtype=torch.float64)
    expected = _code_gradients(module, x, u, steps, weight_of_out)
    draw = lambda t0, t1: u[t0:t1]
    for chunk in (1, 5, steps):  # the reverse sweep carries its state across chunks
        fn = window._bptt_function()
        out = fn.apply(x, (module, steps, draw, 500.0, True, None, chunk), *window._params(module))
        got = torch.autograd.grad((out * weight_of_out).sum(), window._params(module))
        for e, g in zip(expected, got):
            assert torch.allclose(e, g, rtol=1e-9, atol=1e-12)
    assert sum(float(e.abs().sum()) for e in expected) > 0


def test_leak_aware_derivative_against_the_formula():
    # one neuron spiking at steps 0 and 9 of 10, another once at the last step, one silent
    steps, lam, theta = 10, 0.99, 1.0
    spikes = torch.zeros(steps, 1, 3)
    spikes[0, 0, 0] = spikes[9, 0, 0] = spikes[9, 0, 1] = 1
    w = torch.tensor([lam ** (steps - 1 - t) for t in range(steps)])
    total, leaky = spikes.sum(0), torch.tensordot(w, spikes, dims=1)
    c = window.scale_from_totals(total, leaky, lam, theta)[0]
    assert c[0].item() == pytest.approx((1 + math.log(0.99) * (0.99 ** 9 + 1) / 2) / 1.0, rel=1e-6)
    assert c[0].item() == pytest.approx(0.990384, abs=1e-6)
    assert c[1].item() == pytest.approx(1 + math.log(0.99), rel=1e-6)
    assert c[2].item() == 0.0
    assert window.scale_from_totals(total, leaky, lam, 2.0)[0, 1].item() == pytest.approx((1 + math.log(0.99)) / 2)


def test_training_lowers_the_loss_and_the_snn_scores(trained, digits):
    history = trained.meta["history"]
    assert history[-1]["loss"] < 0.75 * history[0]["loss"]
    assert trained.meta["test_accuracy"] > 0.78  # measured 0.86; chance 0.1
    assert "train_accuracy" not in trained.meta  # cheap_predict False: no spiking pass over the training set


@pytest.mark.parametrize("backward,precision", [("rate", "float32"), ("bptt", "bfloat16")])
def test_cheaper_options_train(digits, backward, precision):
    from spikeport.models.training import train

    m = train(digits, arch=ARCH, method="spike-bp", epochs=4, lr=1.5, seed=0,
              options={"steps": STEPS, "backward": backward, "train_precision": precision})
    assert m.meta["history"][-1]["loss"] < 0.8 * m.meta["history"][0]["loss"]
    assert m.meta["test_accuracy"] > 0.7  # measured 0.83 (rate), 0.81 (bfloat16)


def test_starts_from_a_relu_model(digits):
    from spikeport.models.training import method_accuracy, train

    relu = train(digits, arch=ARCH, method="relu", epochs=10, seed=0)
    m = train(digits, arch=ARCH, method="spike-bp", epochs=1, lr=0.05, seed=0, init=relu, options={"steps": STEPS})
    assert m.meta["init"] and [k for k in m.module.state_dict()] == ["conv1.weight", "fc1.weight", "fc2.weight"]
    # the ReLU weights (biases dropped) already make a working spiking network, before any spike-bp step
    spiking = get_method("spike-bp")
    start = spiking.build(m.spec, m.meta["options"])
    start.load_state_dict({k: v for k, v in relu.module.state_dict().items() if k.endswith("weight")})
    before = method_accuracy(spiking, start, digits.x("test"), digits.y("test"), m.meta["options"])
    assert before > 0.4  # measured 0.58 (the ReLU model: 0.80)
    assert m.meta["test_accuracy"] > before + 0.05  # measured 0.72 after one epoch


def test_converted_network_is_the_module(trained, digits):
    from spikeport.models.convert import convert

    net = convert(trained)
    pops = {p.name: p for p in net.populations}
    assert pops["input"].encoding.kind == "poisson" and pops["input"].encoding.max_rate_hz == 500.0
    lif, pool, out = pops["conv1"].neuron, pops["pool1"].neuron, pops[net.output].neuron
    assert (lif.model, lif.decay, lif.threshold, lif.reset) == ("lif", 0.99, 1.0, "zero")
    assert (pops["fc1"].neuron.model, pops["fc1"].neuron.decay) == ("lif", 0.99)
    assert (pool.model, pool.threshold, pool.reset) == ("if", 0.75, "zero")
    assert out.model == "lif" and out.decay == 0.99
    w = trained.module.fc2.weight.detach().double().abs().sum(1).max().item()
    assert out.threshold >= 2 * w / (1 - 0.99)  # out of reach: the output never spikes
    x, y = digits.x("test"), digits.y("test")
    act = reference.run(net, x, STEPS, seed=0, record_counts=True)
    assert act.output_counts.sum() == 0
    m = get_method("spike-bp")
    ctx = Context(options=m.METHOD.resolve_options(trained.meta["options"]), training=False, epoch=-1)
    with torch.no_grad():  # batch by batch, as method_accuracy calls it
        scores = torch.cat([m.predict(trained.module, torch.as_tensor(x[i:i + 100]), ctx)
                            for i in range(0, len(x), 100)])
    np.testing.assert_array_equal(act.predictions[:, -1], scores.argmax(1).numpy())
    # and every population's spike counts, sample by sample
    run = window._Window(trained.module, torch.as_tensor(x[:64]), STEPS,
                         lambda t0, t1: kernels.uniforms(0, 0, 64, t0, t1, 64), max_rate_hz=500.0,
                         output_leak=True)
    for population, neurons in (("conv1", "lif1"), ("pool1", "pool1"), ("fc1", "lif2")):
        np.testing.assert_array_equal(act.neuron_counts[population][:64].reshape(64, -1),
                                      run.counts[neurons].numpy().astype(np.int32))
    assert (scores.argmax(1).numpy() == y).mean() == pytest.approx(trained.meta["test_accuracy"], abs=1e-9)


def test_membrane_read_output_is_reported_as_such(trained, digits):
    """The output never spikes by design: simulate warns about no silent output, and the rate model
    beside the SNN ranks the classes by the output's drive (its steady membrane), not by rates of 0."""
    import dataclasses

    import spikeport
    from spikeport.models.convert import convert

    net = convert(trained)
    assert net.reads_output_membrane
    sim = spikeport.simulate(net, digits, STEPS, samples=300)
    assert sim.activity.population_spikes[net.output].max() == 0
    assert sim.warnings() == []
    unmarked = dataclasses.replace(net, metadata={})  # the same run, its output not known to be read by membrane
    assert not unmarked.reads_output_membrane
    assert any("the output 'fc2' is silent" in w for w in sim.activity.silent(unmarked))
    assert sim.rate_model_accuracy > 0.7  # measured 0.88; the output's rates alone (all 0) give the tie rule's class
    assert sim.accuracy > 0.7  # measured 0.86


def test_declaration_and_options():
    from spikeport.errors import SpikeportError

    m = get_method("spike-bp").METHOD
    assert m.snn.neuron == "lif" and m.snn.reset == "zero" and m.snn.readout == "membrane"
    assert m.snn.tau_rc_s == pytest.approx(-1e-3 / math.log(0.99))
    assert m.options["steps"] == 100 and m.options["leak"] == 0.99 and m.options["pool_threshold"] == 0.75
    assert m.defaults["cheap_predict"] is False and m.defaults["optimizer"] == "sgd"
    assert m.arch_for("mnist") == "lenet"
    module = _module("lenet", (1, 28, 28))
    assert [n for n, _ in module.named_children()] == ["conv1", "lif1", "avgpool1", "pool1", "conv2", "lif2",
                                                       "avgpool2", "pool2", "flatten", "fc1", "lif3", "fc2"]
    assert all(k.endswith("weight") for k in module.state_dict())  # no biases, as the code
    with pytest.raises(SpikeportError, match="backward"):
        _module(backward="sideways")
    with pytest.raises(SpikeportError, match="BatchNorm"):
        spike_bp.build(ArchSpec(arch="cnn", input_shape=(1, 28, 28), classes=10), {})
