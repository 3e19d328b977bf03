"""The graph as PyNN populations and projections: the lowering shared by the pynn-nest and
spinnaker backends (and by the standalone script :func:`spikeport.backends.spinnaker.write_script`),
built with the PyNN engine (:mod:`spikeport.runtimes.pynn_engine`) the script runs.

What becomes what
-----------------
- Time: one graph step is one millisecond of simulator time, whatever ``Network.dt_s``.
  The graph's dynamics are per step (decay factors, not time constants), so the
  rescaling changes nothing; it keeps every delay and spike time an integer number of
  milliseconds.
- Potentials: one unit of the graph's membrane potential is 1 mV, resting and reset
  potentials are 0 mV, the threshold is ``theta`` mV and the capacitance is 1 (pF for
  NEST native cells, nF for PyNN standard cells).
- A spiking population becomes one PyNN ``Population`` of ``copies * size`` cells: copy c
  holds neuron j (C-order flat index) at index ``c * size + j``. Copies are independent
  replicas that simulate different samples side by side. The cell type and its parameters
  come from a :class:`Dialect` (the simulator's vocabulary of cells): NEST native models
  in :mod:`spikeport.backends.pynn_nest`, PyNN standard cells (:class:`StandardCells`)
  for sPyNNaker or any other PyNN simulator. The dialect states which of the graph's
  semantics its cell realizes exactly (:attr:`Cell.notes` lists what it does not).
- A projection becomes its exact synapses (:meth:`spikeport.ir.Projection.materialize`),
  split by sign into an excitatory and an inhibitory PyNN projection (receptor types
  "excitatory" / "inhibitory"), tiled over the copies and sorted by source (sPyNNaker's
  ``FromListConnector`` sizes its rows from the list's order). Weights are in the
  simulator's units (:attr:`Cell.weight_scale`); inhibitory ones carry the sign the
  dialect asks for (NEST native cells take negative weights, standard cells magnitudes).
- Analog input (a real-valued current every step) has no population: the current a
  sample sends into each population through the input's projections is computed with
  ``Projection.apply_numpy`` (exact; :meth:`Lowering.analog_by_delay` keeps each
  projection delay apart) and injected as a constant current with the bias
  (:meth:`Lowering.drive`; pynn-nest starts a delayed projection's current at its delay
  and sends it through the synapse of a cell with a synaptic current; the standalone
  script injects it all as ``i_offset`` from the first step). Spiking input (poisson, regular) is a spike source per input
  neuron whose spikes are :func:`spikeport.backends.common.input_trains`, the trains the
  reference executor uses.
- Delays: PyNN simulators deliver a spike one step later at the earliest, and a cell
  with a synaptic current may add a step between a spike's arrival and its effect on
  the membrane (:attr:`Cell.latency`). The lowering gives every spiking population a
  *lag* (:attr:`Lowering.lag`): the population simulates the graph's step t at simulator
  step ``lag + t``. Lags are the longest path of the smallest realizable latencies, and
  each projection's simulator delay is then padded so that *every* path into a
  population arrives exactly aligned, residual connections included
  (``delay = padded_delay - latency[post]`` >= 1, :func:`spikeport.ir.lags.padded_delay`). A backend that
  starts each population at its lag and reads its spikes in the window
  ``[lag, lag + steps)`` therefore reproduces zero-delay (same-step) delivery exactly;
  the price is ``max lag`` extra steps per sample. An analog input's projections add no
  lag (their current is applied in each population's own window), so a first layer
  driven by an analog input has lag 0. The lags are :func:`spikeport.backends.common.lags`
  (the rule the nengo-loihi backend uses too) with each cell's latency.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import Network, Population
from ..ir.lags import padded_delay
from ..ir.neurons import psc_exp_propagator
from ..runtimes import pynn_engine as engine
from . import common

STEP_MS = engine.STEP_MS  # one graph step in simulator milliseconds


# ---------------------------------------------------------------------------- cells

@dataclass(frozen=True)
class Cell:
    """How one population's neurons are realized by a simulator's cell type.

    model : the cell type's name in the dialect ("iaf_psc_delta", "IF_curr_delta", ...)
    params : its homogeneous parameters, in the simulator's units
    weight_scale : simulator weight per unit of graph weight (the membrane jump of a
        delta synapse, or the current step of an exponential synapse that integrates to it)
    current_scale : simulator constant current (I_e / i_offset) per unit of graph current
        per step (the bias b and the analog input current J)
    latency : steps between a spike's arrival and its first effect on the membrane
        (0 for a delta synapse; 1 for NEST's exponential synapse, which adds the arriving
        spike to the current after the membrane update of that step)
    current_lead : a change of the constant current takes effect this many steps after
        it is made (NEST's eprop_iaf reads its current one step late)
    notes : what the cell does not realize exactly, in words, with the size of the effect
    """

    model: str
    params: dict
    weight_scale: float = 1.0
    current_scale: float = 1.0
    latency: int = 0
    current_lead: int = 0
    notes: tuple = ()


class Dialect:
    """A simulator's vocabulary of cells: maps a graph population to a :class:`Cell`.

    Subclasses set ``v_name`` (the membrane state variable), ``current_name`` (the
    constant-current parameter) and ``inhibitory_sign`` (+1: inhibitory projections take
    weight magnitudes, -1: negative weights), and implement :meth:`cell`.
    """

    name = "abstract"
    v_name = "v"
    current_name = "i_offset"
    inhibitory_sign = 1.0
    pynn_weight_factor = 1.0  # PyNN weight per simulator weight (pyNN.nest scales native weights by 1000)

    def cell(self, pop: Population) -> Cell:
        raise NotImplementedError

    def finalize(self, cells: dict) -> dict:
        """A last look at all cells of a network (e.g. to measure the simulator's own
        propagators once); returns {name: Cell}. The default keeps them."""
        return cells

    def celltype(self, sim, cell: Cell):
        """The PyNN cell type object of ``cell`` for simulator module ``sim``."""
        return getattr(sim, cell.model)(**cell.params)


def lif_tau(decay: float, tau_min: float = 1.0 / 700.0) -> float:
    """The membrane time constant (in steps) whose exact one-step decay is ``decay``
    (decay 0 becomes ``tau_min``: exp(-700) ~ 1e-304, zero in effect)."""
    if decay <= 0.0:
        return tau_min
    return -1.0 / math.log(decay)


class StandardCells(Dialect):
    """PyNN's standard cells, which every PyNN simulator (sPyNNaker included) provides:
    ``IF_curr_delta`` (a spike of weight w raises v by w mV) and, for a graph neuron with a
    synaptic current, ``IF_curr_exp``.

    What they realize: a LIF leak through tau_m = -1 / ln(decay) steps; reset to zero
    (v_reset = 0) with ``tau_refrac`` = refractory steps; the bias and analog input as
    ``i_offset``. What they do not: reset by subtraction (standard cells reset to
    v_reset: lowered to reset to zero, named in the notes); IF (no leak) needs tau_m to be
    infinite, which ``max_tau_m`` bounds (sPyNNaker stores tau_m in s16.15 fixed point,
    so at most 32768 steps: a leak of 3.05e-5 per step).
    """

    name = "pynn-standard"

    def __init__(self, max_tau_m: float = 32768.0):
        self.max_tau_m = float(max_tau_m)

    def cell(self, pop: Population) -> Cell:
        nm = pop.neuron
        notes = []
        if nm.model == "if":
            tau = self.max_tau_m
            notes.append(f"IF neurons leak with tau_m = {tau:g} steps (decay {math.exp(-1 / tau):.8f} per step, "
                         f"not 1): the cell's largest membrane time constant")
        else:
            tau = min(lif_tau(nm.decay), self.max_tau_m)
        if nm.reset == "subtract":
            notes.append("reset by subtraction is not a standard PyNN cell: lowered to reset to zero "
                         "(the charge above threshold is lost at every spike)")
        params = dict(tau_m=tau, cm=1.0, v_rest=0.0, v_reset=0.0, v_thresh=float(nm.threshold),
                      tau_refrac=nm.refractory_steps * STEP_MS, i_offset=0.0)
        p30 = tau * -math.expm1(-1.0 / tau)  # membrane change per step of a unit constant current
        if nm.syn_decay is None:
            return Cell("IF_curr_delta", params, weight_scale=1.0, current_scale=1.0 / p30, notes=tuple(notes))
        tau_s = lif_tau(nm.syn_decay)
        params.update(tau_syn_E=tau_s, tau_syn_I=tau_s)
        p21 = psc_exp_propagator(tau_s, tau)
        notes.append("the analog input current into a population with a synaptic current is injected as a "
                     "constant current (not filtered by the synapse)")
        return Cell("IF_curr_exp", params, weight_scale=1.0 / p21, current_scale=1.0 / p30, notes=tuple(notes))


# ---------------------------------------------------------------------------- the lowering

@dataclass
class LoweredPopulation:
    """One spiking population: its cell, lag, and per-neuron initial membrane and bias (flat)."""

    name: str
    shape: tuple
    size: int
    cell: Cell
    lag: int
    v_init: np.ndarray
    bias: np.ndarray
    threshold: float


@dataclass
class LoweredProjection:
    """The synapses of one sign of one graph projection (pre -> post, one receptor type).

    pre, post: flat indices within one copy; weight: simulator units, signed as the
    dialect wants; delay: simulator steps (>= 1), the same for every synapse.
    """

    name: str
    source: str        # the graph projection it comes from
    pre: str
    post: str
    receptor: str      # "excitatory" or "inhibitory"
    pre_index: np.ndarray
    post_index: np.ndarray
    weight: np.ndarray
    delay: int

    def tiled(self, copies: int, n_pre: int, n_post: int):
        """(pre, post, weight) over ``copies`` side-by-side copies, sorted by source."""
        c = np.arange(copies, dtype=np.int64)[:, None]
        pre = (self.pre_index[None, :] + c * n_pre).ravel()
        post = (self.post_index[None, :] + c * n_post).ravel()
        w = np.broadcast_to(self.weight, (copies, len(self.weight))).ravel()
        order = np.argsort(pre, kind="stable")
        return pre[order], post[order], w[order]


class Lowering:
    """The graph lowered for a PyNN simulator with a one-step minimum delay.

    Attributes: ``populations`` (spiking, in topological order: name -> LoweredPopulation),
    ``projections`` (list of LoweredProjection between spike-emitting populations, the
    spiking input included), ``analog`` (graph projections from an analog input, applied to
    each sample as a current), ``lag`` (name -> steps, the input's is 0), ``max_lag``,
    ``max_delay`` (the longest simulator delay, steps), ``notes`` (the semantic differences
    of the chosen cells, one line each, without repeats).
    """

    def __init__(self, network: Network, dialect: Dialect):
        # refuses reset_amount, several spikes per step and v > theta (no PyNN cell realizes them)
        order = common.require_simulable(network, "PyNN")
        self.network, self.dialect = network, dialect
        inp = network.population(network.input)
        self.input, self.encoding = inp.name, inp.encoding.kind
        cells = dialect.finalize({p.name: dialect.cell(p) for p in order if not p.is_input})
        # an analog input's projections are currents, applied in each population's own window
        self.analog = [p for p in network.projections if p.pre == inp.name and self.encoding == "analog"]

        def latency(proj):  # the smallest realizable: one step of delay at least, plus the cell's own
            cell_latency = cells[proj.post].latency
            return max(1, proj.delay_steps - cell_latency) + cell_latency

        self.lag = lag = common.lags(network, latency)
        self.max_lag = max(lag.values())
        self.populations = {}
        for pop in order:
            if pop.is_input:
                continue
            bias = np.zeros(pop.size) if pop.bias is None else pop.bias.reshape(-1).astype(np.float64)
            self.populations[pop.name] = LoweredPopulation(
                pop.name, pop.shape, pop.size, cells[pop.name], lag[pop.name],
                pop.initial_membrane().reshape(-1).astype(np.float64), bias, float(pop.neuron.threshold))
        self.projections = []
        for proj in network.projections:
            if proj in self.analog:
                continue
            cell = cells[proj.post]
            delay = padded_delay(proj, lag) - cell.latency
            assert delay >= 1, (proj.name, delay)
            syn = proj.materialize(network.population(proj.pre).shape)
            for receptor, keep in (("excitatory", syn.weight > 0), ("inhibitory", syn.weight < 0)):
                if not keep.any():
                    continue
                w = np.abs(syn.weight[keep]) * cell.weight_scale
                if receptor == "inhibitory":
                    w = w * dialect.inhibitory_sign
                self.projections.append(LoweredProjection(
                    f"{proj.name}[{receptor[:3]}]", proj.name, proj.pre, proj.post, receptor,
                    syn.pre[keep].astype(np.int64), syn.post[keep].astype(np.int64), w, int(delay)))
        self.max_delay = max([p.delay for p in self.projections], default=1)
        notes = []
        for c in cells.values():
            for n in c.notes:
                if n not in notes:
                    notes.append(n)
        self.notes = notes

    # ------------------------------------------------------------------ per sample
    def analog_current(self, x: np.ndarray) -> dict:
        """The graph current per step that each population receives from an analog input:
        {name: (samples, size) float64}; empty for spiking input."""
        return {name: sum(by.values()) for name, by in self.analog_by_delay(x).items()}

    def analog_by_delay(self, x: np.ndarray) -> dict:
        """The analog input's current per population and projection delay d: {name: {d:
        (samples, size) float64}}; the graph delivers the current of delay d from step d on."""
        out = {}
        if not self.analog:
            return out
        inp = self.network.population(self.input)
        xs = np.asarray(x, np.float64).reshape((len(x),) + inp.shape)
        for proj in self.analog:
            j = proj.apply_numpy(xs).reshape(len(x), -1)
            by = out.setdefault(proj.post, {})
            d = int(proj.delay_steps)
            by[d] = by[d] + j if d in by else j
        return out

    def drive(self, x: np.ndarray) -> dict:
        """The constant graph current per step of every population for every sample: its
        bias plus the analog input current, {name: (samples, size) float64}."""
        cur = self.analog_current(x)
        return {name: (lp.bias[None, :] + cur[name]) if name in cur else np.broadcast_to(lp.bias, (len(x), lp.size))
                for name, lp in self.populations.items()}

    def neurons(self) -> int:
        return sum(p.size for p in self.populations.values())

    def synapses(self) -> int:
        return sum(len(p.weight) for p in self.projections)

    def summary(self) -> list:
        """One line per population: cell model, lag."""
        return [f"{p.name}: {p.cell.model} x {p.size}, lag {p.lag}" for p in self.populations.values()]


# ---------------------------------------------------------------------------- building with PyNN
# The building blocks are the PyNN engine's (spikeport.runtimes.pynn_engine), which the
# standalone script run_spinnaker.py runs too; here they take a Lowering.

def create_populations(sim, lowering: Lowering, copies: int = 1, drive: dict | None = None,
                       initialize: bool = True) -> dict:
    """One PyNN Population per spiking population (``copies * size`` cells, label = the
    graph name), with its cell type and parameters, the membrane initialized to v_init and
    the constant current set to ``drive[name]`` ((copies, size) graph current; default: the
    bias). ``initialize=False`` leaves state and current to the caller. Returns {name: Population}."""
    d = lowering.dialect
    pops = {}
    for name, lp in lowering.populations.items():
        v = cur = None
        if initialize:
            cur = lp.bias[None, :] if drive is None else np.asarray(drive[name]).reshape(-1, lp.size)
            cur = np.broadcast_to(cur, (copies, lp.size)).ravel() * lp.cell.current_scale
            v = np.tile(lp.v_init, copies)
        pops[name] = engine.population(sim, copies * lp.size, d.celltype(sim, lp.cell), name, v=v, current=cur,
                                       v_name=d.v_name, current_name=d.current_name)
    return pops


def create_input(sim, lowering: Lowering, trains: np.ndarray | None, copies: int = 1, offset: int = 0,
                 placeholder: int | None = None):
    """The spiking input as a ``SpikeSourceArray`` of ``copies * n`` sources (label = the
    graph name), spiking at the steps of ``trains`` (bool (copies, steps, n)) shifted by
    ``offset`` steps; None for analog input. Without any spike, ``placeholder`` (a step,
    e.g. after the run's end) gives the first source one spike: sPyNNaker 7.4 cannot
    build a SpikeSourceArray that never spikes."""
    if lowering.encoding == "analog":
        return None
    n = lowering.network.population(lowering.input).size
    times = engine.spike_times(trains, copies, n, offset, placeholder, STEP_MS)
    return sim.Population(copies * n, sim.SpikeSourceArray(spike_times=times), label=lowering.input)


def create_projections(sim, lowering: Lowering, pops: dict, copies: int = 1, only=None) -> list:
    """The PyNN Projections of every lowered projection (``FromListConnector`` lists
    sorted by source, ``StaticSynapse``, delays in ms). ``pops`` maps graph names to
    PyNN populations (the input's included for spiking input); ``only`` optionally
    filters which lowered projections to build. Returns the PyNN Projections."""
    out = []
    for lp in lowering.projections:
        if only is not None and not only(lp):
            continue
        n_pre = lowering.network.population(lp.pre).size
        n_post = lowering.populations[lp.post].size
        pre, post, w = lp.tiled(copies, n_pre, n_post)
        out.append(engine.projection(sim, pops[lp.pre], pops[lp.post], pre, post,
                                     w * lowering.dialect.pynn_weight_factor, lp.delay, lp.receptor, lp.name,
                                     STEP_MS))
    return out
