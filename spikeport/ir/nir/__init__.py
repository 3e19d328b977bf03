"""NIR import and export: the graph to and from the Neuromorphic Intermediate Representation.

NIR (the ``nir`` package, 1.0.x, an optional extra: ``pip install spikeport[nir]``)
describes neurons in continuous time; the graph (:mod:`spikeport.ir.neurons`) is
discrete, in steps of ``dt_s``. This package is the only place that maps between
them, and it maps exactly or refuses: a parameter that has no exact spikeport
equivalent is a :class:`~spikeport.errors.GraphError` naming the NIR node and the
parameter, never an approximation. ``import nir`` happens inside the functions,
so ``import spikeport.ir`` works without the package.

Discretization assumed on import
--------------------------------
Forward Euler with steps of ``dt_s``, unless the node's ``metadata["spikeport"]`` says
``"discretization": "exponential"`` or carries a whole spikeport neuron model
(files written by :func:`export_nir`). Per step, with I the sum of the node's
incoming edges (S the same for CubaLIF)::

    IF:      v += dt r I
    LIF:     v += dt/tau (v_leak - v + r I)                 decay = 1 - dt/tau
    CubaLIF: I_s += dt/tau_syn (w_in S - I_s)                syn_decay = 1 - dt/tau_syn
             v += dt/tau_mem (v_leak - v + r I_s)           with the updated I_s
    then     spike where v > v_threshold;  v = v_reset where it spiked
    all state (v, I_s) starts at 0; edges deliver within the same step (delay 0).

``"exponential"`` replaces dt/tau by 1 - exp(-dt/tau) (and decay by exp(-dt/tau)):
the exact LIF step for an input held constant over the step (for CubaLIF, applied
to each of its two equations in turn); IF is the same in both. A LIF or CubaLIF
with tau < dt is refused under forward Euler (its decay would be negative).

How a NIR neuron becomes a spikeport population (exact, per neuron j)
---------------------------------------------------------------------
The discrete NIR membrane is an affine image of spikeport's:
``v_nir = v_reset_j + s_j v_spk`` with a per-neuron scale s_j > 0, so

- input weights are multiplied by g_j / s_j, where g_j is the per-step input gain
  (dt r for IF, dt/tau r for LIF, dt/tau_mem r dt/tau_syn w_in for CubaLIF);
- theta = (v_threshold_j - v_reset_j) / s_j, v_init = -v_reset_j / s_j, reset "zero";
- the population bias is the constant part of the step, divided by s_j: an Affine
  bias b_j feeding the neuron directly gives g_j b_j (IF, LIF), and a leak toward
  v_leak gives dt/tau (v_leak_j - v_reset_j) (LIF, CubaLIF): so v_leak and v_reset
  are exact too.

spikeport has one threshold, decay, syn_decay and v_init per population. s_j = g_j
is tried first (weights untouched); if the resulting thresholds differ across
neurons, s_j = v_threshold_j - v_reset_j folds every neuron's threshold into its
input weights and bias (dividing a neuron's weights, bias and threshold by the
same positive factor changes no spike; theta becomes 1), which needs the last op
of every incoming chain to take a per-neuron factor (Dense rows; Conv2d output
channels when the factor is constant over a channel; otherwise an extra
diagonal Dense or depthwise 1x1 Conv2d) and v_reset / (v_threshold - v_reset)
equal across neurons. What is still not uniform (tau, tau_syn, v_init) is an
error. "Equal across neurons" allows a relative 1e-12: the float64 rounding of
one value computed per neuron. NIR fires on ``v > v_threshold``, spikeport on ``v >= theta``; the
threshold is stored as the next float64 above, which makes the two tests agree
for every float64 membrane value (a float32 simulator such as the reference
executor rounds theta to float32, and so also fires on v == v_threshold exactly).

Other mappings: Affine/Linear -> Dense (a bias only where the node feeds neuron
nodes directly: a bias followed by further linear ops is refused); Scale -> folded
into the previous Dense/Conv2d or a diagonal op; Conv2d (with 'same'/'valid'
padding resolved; its per-channel bias like an Affine bias) -> Conv2d;
SumPool2d -> SumPool2d; AvgPool2d -> AvgPool2d (with padding only when the node's
metadata says ``count_include_pad``); Flatten of all dimensions -> Flatten; the
Input node -> the input population (analog unless its metadata gives an
encoding); the Output node's source -> ``network.output``. Every path of linear
nodes from a population to a neuron node becomes one projection (several edges
into one node add). Refused: Delay, Threshold, I, LI, CubaLI, Conv1d, nested
graphs, cycles, several Inputs or Outputs.

Export
------
:func:`export_nir` writes IF (r = 1/dt), LIF (tau = dt/(1 - decay), r = tau/dt) or
CubaLIF (also tau_syn = dt/(1 - syn_decay), w_in = tau_syn/dt) nodes whose
forward-Euler steps of dt are the population's per-step map, v_threshold = the
float64 just below theta, v_reset = 0; projections become chains of
Linear/Affine, Conv2d, SumPool2d, AvgPool2d and Flatten nodes. The bias rides on
an Affine (or per-channel Conv2d bias) ending a projection into the population,
else on v_leak (LIF, CubaLIF). What NIR cannot express is stored only in
``metadata["spikeport"]`` (a JSON string) of the nodes and the graph, and a
warning lists it: dt_s, reset by subtraction, refractory_steps, v_init, delays,
input encodings, projection and population names, a bias nothing else can carry.
:func:`import_nir` reads that metadata back, so ir -> NIR -> ir is exact (same
arrays bitwise, same neuron models), after checking that the node's NIR
parameters still say what the metadata says.

``export_nir(network, path, library="snntorch" | "norse" | "sinabs" | "rockpool")``
writes instead the form that library's own NIR importer reads as the same discrete
neuron, or refuses naming the population (docs/nir-libraries.md, section 8); the
matching import preset reads such a file back as the same network.

Layout (one job per module)
---------------------------
``importer`` (:func:`import_nir`, the graph's structure and paths), ``reader`` (the file),
``linear_nodes`` and ``neuron_nodes`` (NIR node type -> handler registries), ``presets`` and
``library_presets`` (a library's discrete semantics, one class per library), ``detect``
(:func:`detect_library`), ``targets`` (files written for a library's importer read back),
``export`` (:func:`export_nir`; spikeport op kind -> handler registry), ``library_export``
(``library=...``), ``libraries``, ``metadata`` and ``common`` (what they share).
"""
from .common import NIRWarning, is_nir_file
from .detect import detect_library
from .export import export_nir
from .importer import import_nir
from .libraries import EXPORT_LIBRARIES, LIBRARIES, ROCKPOOL_MAX_SPIKES, SINABS_MAX_SPIKES

__all__ = ["import_nir", "export_nir", "detect_library", "is_nir_file", "NIRWarning", "LIBRARIES",
           "EXPORT_LIBRARIES", "SINABS_MAX_SPIKES", "ROCKPOOL_MAX_SPIKES"]
