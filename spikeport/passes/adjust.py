"""The conversion adjustments ``convert`` applies for one number of steps T: the L4-norm
adjustment (:func:`spikeport.models.calibrate.l4_adjust`) and the calibration towards the ANN
(:mod:`spikeport.passes.calibrate`), in that order, with one line per adjustment saying what it did."""
from __future__ import annotations

from ..errors import SpikeportError
from ..models.calibrate import L4_MODES, SIGMAS, l4_adjust
from ..models.diagnose import ann_rates
from .calibrate import calibrate_bias, calibrate_membrane, calibrate_weights, choose_l4_alpha

CALIBRATIONS = ("bias", "membrane", "weights")


def check(steps: int | None, *, l4: str | None = None, l4_sigma: str = "l4", l4_alpha: float | str = 1.0,
          calibrate: str | None = None, labelled: bool = True) -> None:
    """Before any work: the adjustment options make sense (one clear error otherwise)."""
    if not (l4 or calibrate):
        return
    if steps is None:
        raise SpikeportError("--l4 and --calibrate are made for one number of steps: give --for-steps T")
    if l4 is not None and l4 not in L4_MODES:
        raise SpikeportError(f"unknown L4 adjustment mode {l4!r} (known: {', '.join(L4_MODES)})")
    if l4_sigma not in SIGMAS:
        raise SpikeportError(f"unknown sigma {l4_sigma!r} (known: {', '.join(SIGMAS)})")
    if calibrate is not None and calibrate not in CALIBRATIONS:
        raise SpikeportError(f"unknown calibration {calibrate!r} (known: {', '.join(CALIBRATIONS)})")
    if not labelled and l4 and l4_alpha == "auto":
        raise SpikeportError("--l4-alpha auto chooses by accuracy on the calibration samples: they have no labels y")


def adjust(net, x, y=None, steps: int | None = None, *, l4: str | None = None, l4_sigma: str = "l4",
           l4_alpha: float | str = 1.0, calibrate: str | None = None, module=None):
    """``net`` adjusted for T = ``steps`` on calibration samples ``x`` (labels ``y``, needed only for
    ``l4_alpha="auto"``). Returns (network, lines).

    ``l4``: "scale" or "shift" (None: no L4 adjustment), with ``l4_sigma`` and ``l4_alpha`` (a number,
    or "auto": the best of a grid by accuracy on (x, y)). ``calibrate``: "bias", "membrane" or
    "weights" (None: none), towards the activations of ``module`` (the ANN the network was converted
    from; Li et al.'s target, right also where the ANN is not the graph's rate model, as with QCFS),
    or towards the network's rate model where ``module`` is None.
    """
    check(steps, l4=l4, l4_sigma=l4_sigma, l4_alpha=l4_alpha, calibrate=calibrate, labelled=y is not None)
    if not (l4 or calibrate):
        return net, []
    n, lines = len(x), []
    if l4:
        alpha = l4_alpha
        if alpha == "auto":
            alpha, scores = choose_l4_alpha(net, x, y, steps, mode=l4, sigma=l4_sigma)
            lines.append("L4 alpha chosen on the calibration samples: " +
                         ", ".join(f"{a:g}: {s:.2%}" for a, s in scores.items()) + f" -> {alpha:g}")
        net, rep = l4_adjust(net, x, steps, alpha=float(alpha), mode=l4, sigma=l4_sigma)
        key = "factor_mean" if l4 == "scale" else "shift_mean"
        lines.append(f"L4 adjustment ({l4}, sigma {l4_sigma}, alpha {float(alpha):g}, T = {steps}, "
                     f"{n} samples): " + ", ".join(f"{r['population']} {r[key]:.4g}" for r in rep))
    if calibrate:
        target = None if module is None else ann_rates(net, module, x)
        towards = "the rate model" if module is None else "the ANN"
        if calibrate == "weights":  # each layer's weights, then its bias: both lines
            net, rep = calibrate_weights(net, x, steps, target=target)
            lines.append(f"weight calibration towards {towards} (T = {steps}, {n} samples), relative drive "
                         "error before -> after: " + ", ".join(
                             f"{r['population']} {r['drive_error_before']:.4f} -> {r['drive_error_after']:.4f}"
                             for r in rep if r["fitted"]))
        else:
            net, rep = (calibrate_membrane if calibrate == "membrane" else calibrate_bias)(net, x, steps, target=target)
        what = "initial membrane" if calibrate == "membrane" else "bias"
        lines.append(f"{what} calibration towards {towards} (T = {steps}, {n} samples), mean |rate error| "
                     "before: " + ", ".join(f"{r['population']} {r['rate_error_before']:.4f}" for r in rep))
    return net, lines
