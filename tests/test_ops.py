"""Materialized projections equal torch's convolution and pooling (property-based)."""
import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeport.ir import AvgPool2d, Conv2d, Dense, Flatten, Projection, SumPool2d


def apply_matrix(proj, x):
    n_pre = int(np.prod(x.shape[1:]))
    syn = proj.materialize(x.shape[1:])
    out_size = int(np.prod(proj.apply_numpy(x[:1]).shape[1:]))
    return x.reshape(len(x), -1) @ syn.dense(n_pre, out_size), syn


@st.composite
def conv_case(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh)), draw(st.integers(0, kw))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 10))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 10))
    seed = draw(st.integers(0, 2**31))
    return dict(groups=groups, c_in=c_in, c_out=c_out, k=(kh, kw), s=(sh, sw), p=(ph, pw), d=(dh, dw), h=h, w=w, seed=seed)


@settings(max_examples=150, deadline=None)
@given(conv_case())
def test_conv2d_matrix_equals_torch(case):
    rng = np.random.default_rng(case["seed"])
    weight = rng.normal(size=(case["c_out"], case["c_in"] // case["groups"]) + case["k"])
    x = rng.normal(size=(2, case["c_in"], case["h"], case["w"]))
    op = Conv2d(weight, stride=case["s"], padding=case["p"], dilation=case["d"], groups=case["groups"])
    expected = F.conv2d(torch.tensor(x), torch.tensor(weight), stride=case["s"], padding=case["p"],
                        dilation=case["d"], groups=case["groups"]).numpy()
    assert op.out_shape(x.shape[1:], "t") == expected.shape[1:]
    got, syn = apply_matrix(Projection("p", "a", "b", [op]), x)
    np.testing.assert_allclose(got, expected.reshape(2, -1), atol=1e-10)
    np.testing.assert_allclose(op.apply_numpy(x), expected, atol=1e-10)
    # padding creates no synapses: count the in-bounds taps directly
    ho, wo = expected.shape[2:]
    taps = 0
    for u in range(case["k"][0]):
        rows = sum(0 <= i * case["s"][0] + u * case["d"][0] - case["p"][0] < case["h"] for i in range(ho))
        for v in range(case["k"][1]):
            cols = sum(0 <= j * case["s"][1] + v * case["d"][1] - case["p"][1] < case["w"] for j in range(wo))
            taps += rows * cols
    assert len(syn) == taps * case["c_out"] * (case["c_in"] // case["groups"])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.integers(4, 11), st.booleans(), st.integers(0, 2**31))
def test_pooling_matrix_equals_torch(channels, kh, kw, stride, pad, size, average, seed):
    pad = min(pad, kh // 2, kw // 2)  # torch's limit: padding at most half the kernel
    x = np.random.default_rng(seed).normal(size=(2, channels, size, size + 1))
    expected = F.avg_pool2d(torch.tensor(x), (kh, kw), stride, pad, count_include_pad=True).numpy()
    if not average:
        expected = expected * (kh * kw)
    op = (AvgPool2d if average else SumPool2d)((kh, kw), stride=stride, padding=pad)
    got, _ = apply_matrix(Projection("p", "a", "b", [op]), x)
    np.testing.assert_allclose(got, expected.reshape(2, -1), atol=1e-10)
    np.testing.assert_allclose(op.apply_numpy(x), expected, atol=1e-10)


def test_chain_matrix_equals_sequential_application():
    rng = np.random.default_rng(1)
    proj = Projection("p", "a", "b", [AvgPool2d(2), Conv2d(rng.normal(size=(3, 2, 3, 3)), padding=1), Flatten(),
                                      Dense(rng.normal(size=(4, 3 * 4 * 4)))])
    x = rng.normal(size=(3, 2, 8, 8))
    t = F.avg_pool2d(torch.tensor(x), 2)
    t = F.conv2d(t, torch.tensor(proj.ops[1].weight), padding=1).flatten(1) @ torch.tensor(proj.ops[3].weight).T
    got, syn = apply_matrix(proj, x)
    np.testing.assert_allclose(got, t.numpy(), atol=1e-10)
    np.testing.assert_array_equal(syn.delay, 0)
