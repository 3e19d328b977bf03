"""Noisy Softplus constants (k, S) refitted by spikeport.models.nsp_fit against the published ones.

    .venv/bin/python bench/nsp_fit.py [--seeds 0,1,2] [--fine]

The authors' neuron (PyNN IF_curr_exp: cm 0.25 nF, tau_m 20 ms, tau_refrac 1 ms, v_rest =
v_reset = -65 mV, v_thresh -50 mV, i_offset 0.1 nA) under shot-noise current on their grid
(mean -0.5..0.6 nA, sigma 0.2 / 0.5 / 1.0 nA; 10 trials of 10 s), fitted by least squares:

- published (no bias, i_offset 0.1 nA in the neuron): tau_syn 5 ms k 0.30, S 201 (Liu & Furber
  2016); 1 ms k 0.19, S 208.76 and 10 ms k 0.35, S 201.06 (Liu, Chen & Furber 2017);
- the thesis's (k, b, S) fits with a fitted input offset b on a neuron without i_offset
  (Liu 2018, fig. 4.7): 1 ms (0.18, 0.07, 201.66), 10 ms (0.35, 0.03, 178.91); and its
  revised 5 ms constants (k 0.31, S 217, used with i_offset = b = 0.1 nA).

``--fine`` also fits on a 0.1 ms step (the continuous-time neuron) instead of NEST's 1 ms grid.
Prints one line per case: published, ours (mean over seeds, spread), % difference.
"""
import argparse
import time

import numpy as np

from spikeport.models.nsp_fit import fit_nsp

PUBLISHED = [
    # (label, tau_syn ms, fit kwargs, published k, published S, published b)
    ("ICONIP 2016, tau_syn 5 ms", 5.0, {}, 0.30, 201.0, None),
    ("arXiv 2017, tau_syn 1 ms", 1.0, {}, 0.19, 208.76, None),
    ("arXiv 2017, tau_syn 10 ms", 10.0, {}, 0.35, 201.06, None),
    ("thesis revised, tau_syn 5 ms", 5.0, {}, 0.31, 217.0, None),
    ("thesis fit with bias, 1 ms", 1.0, {"i_offset_na": 0.0, "fit_bias": True}, 0.18, 201.66, 0.07),
    ("thesis fit with bias, 10 ms", 10.0, {"i_offset_na": 0.0, "fit_bias": True}, 0.35, 178.91, 0.03),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--fine", action="store_true", help="also fit at dt 0.1 ms")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    steps = [1.0, 0.1] if args.fine else [1.0]
    print(f"{'case':32s} {'dt':>6s} {'k pub':>6s} {'k ours':>14s} {'dk %':>6s} {'S pub':>7s} {'S ours':>14s} "
          f"{'dS %':>6s} {'b pub':>6s} {'b ours':>7s} {'rms Hz':>7s} {'s/fit':>6s}")
    cache = {}
    for label, tau, kw, k_pub, s_pub, b_pub in PUBLISHED:
        for dt in steps:
            key = (tau, dt, tuple(sorted(kw.items())))
            if key not in cache:
                t0 = time.perf_counter()
                fits = [fit_nsp(tau_syn_ms=tau, dt_ms=dt, seed=s, **kw) for s in seeds]
                cache[key] = (fits, (time.perf_counter() - t0) / len(seeds))
            fits, sec = cache[key]
            k = np.array([f.k for f in fits])
            S = np.array([f.S_hz_per_na for f in fits])
            b = np.mean([f.bias_na for f in fits])
            rms = np.mean([f.residual_hz for f in fits])
            b_txt = f"{b_pub:6.2f} {b:7.3f}" if b_pub is not None else f"{'-':>6s} {'-':>7s}"
            print(f"{label:32s} {dt:4.1f}ms {k_pub:6.2f} {k.mean():7.3f}+-{k.std():.3f} "
                  f"{100 * (k.mean() / k_pub - 1):+6.1f} {s_pub:7.2f} {S.mean():8.2f}+-{S.std():.2f} "
                  f"{100 * (S.mean() / s_pub - 1):+6.1f} {b_txt} {rms:7.2f} {sec:6.2f}")


if __name__ == "__main__":
    main()
