#!/usr/bin/env python3
"""NumPy baseline for `memsweep bench`.

A batched NumPy implementation of the circuit model in MODEL.md (sections
1-8): memristive networks trained by the "learning from mistakes" rule, the
way a careful researcher would write it, vectorised over instances. It is the
speed baseline that the Rust engine is compared against.

Scope: `layered` topology, all-to-all (density 1, skip 0, no random polarity),
the `one_hot` task with P = n_in patterns, and every other MODEL.md default
(Ron 1e3, Roff 1e4, Vt 1, alpha 0, beta 1.8e9, sigma_r0 0.3, sigma_d2d 0,
sigma_c2c 0, gmin 1e-12, V_read 0.5, V_punish 3, V_norm 2, tau 1e-6,
n_sub 10, max_eras 20, p_prune 0.3, f_prune 0.95).

It mirrors MODEL.md and the engine's conventions:
- nodes are ordered inputs, hidden layers in order, outputs; edges run over
  consecutive layer pairs, tail-major (each tail u of the lower layer, then
  each head v of the upper layer); v_e = V_tail - V_head;
- each pulse is n_sub explicit-Euler substeps of dt = tau / n_sub: solve the
  node voltages with the current R, add P dt to the write energy, update R of
  the alive edges, clip to [Ron, Roff];
- an era reads pattern k = 0..P-1 in order; after a wrong read it applies a
  punish pulse and then a normalize pulse; after the era, stochastic pruning;
  an instance with no mistake in an era has converged and leaves the batch;
- after training, a final read of every pattern gives `recalled`.

Every circuit solve builds the full N x N nodal matrix L = A diag(g) A^T + gmin I
for the whole batch at once, with the rows of fixed nodes replaced by identity
rows, by a single gather from a per-instance vector [0, 1, -g, degree + gmin]
through a precomputed slot table (the fastest of the assembly variants
measured, see `nodal_matrix`), and calls batched `np.linalg.solve` on
(B, N, N). Instances that need no punish at a step are indexed out of it.

Random draws come from one NumPy generator seeded by --seed, so the results
agree with the engine statistically, not draw for draw.

Run:
    pip install numpy
    python3 benches/numpy_baseline.py --n-in 8 --hidden 16 --n-out 8 --instances 64
    python3 benches/numpy_baseline.py --n-in 8 --hidden 32 32 32 --n-out 8 --instances 64 --json

It prints instances trained per second, memristor updates per second (alive
edges x substeps actually integrated, summed over instances, per second of
wall time), the mean recalled/P and Pr[learned_all]. The timed span is
drawing the instances, training and the final read. Along the way it also
keeps the other per-instance measures of MODEL.md section 8 that cost little
(converged_era, eras run, write energy, read-power trace, pruned edges, final
contrast); the structural ones (cycle space, controllability) are left out.
"""

import argparse
import json
import time

import numpy as np

# MODEL.md defaults.
RON = 1e3          # ohm
ROFF = 1e4         # ohm
VT = 1.0           # V
ALPHA = 0.0        # ohm/(V s)
BETA = 1.8e9       # ohm/(V s)
SIGMA_R0 = 0.3
GMIN = 1e-12       # S
V_READ = 0.5       # V
V_PUNISH = 3.0     # V
V_NORM = 2.0       # V
TAU = 1e-6         # s
N_SUB = 10
MAX_ERAS = 20
P_PRUNE = 0.3
F_PRUNE = 0.95
TIE_RTOL = 1e-9


class LayeredNetwork:
    """All-to-all layered network: node and edge numbering as in the engine."""

    def __init__(self, n_in, hidden, n_out):
        widths = [n_in, *hidden, n_out]
        starts = np.cumsum([0, *widths])
        layers = [np.arange(starts[i], starts[i + 1]) for i in range(len(widths))]
        self.n_in, self.n_out = n_in, n_out
        self.n_nodes = int(starts[-1])
        self.inputs = layers[0]
        self.outputs = layers[-1]
        # Tail-major edges between consecutive layers.
        self.tail = np.concatenate([np.repeat(lo, len(hi)) for lo, hi in zip(layers, layers[1:])])
        self.head = np.concatenate([np.tile(hi, len(lo)) for lo, hi in zip(layers, layers[1:])])
        self.n_edges = len(self.tail)
        # out_incidence[e, o]: +1 if edge e ends at output o, -1 if it starts there,
        # so that I_o = sum_e g_e (V_tail - V_head) out_incidence[e, o].
        self.out_incidence = np.zeros((self.n_edges, n_out))
        for o, node in enumerate(self.outputs):
            self.out_incidence[self.head == node, o] += 1.0
            self.out_incidence[self.tail == node, o] -= 1.0
        # Read and normalize fix every input and every output.
        self.terminals = tuple(int(n) for n in np.concatenate([self.inputs, self.outputs]))
        # node_edge[e, n] = 1 where edge e touches node n: degree = g @ node_edge.
        self.node_edge = np.zeros((self.n_edges, self.n_nodes))
        self.node_edge[np.arange(self.n_edges), self.tail] = 1.0
        self.node_edge[np.arange(self.n_edges), self.head] = 1.0
        self._slot_tables = {}

    def slots(self, fixed):
        """Where each slot of the nodal matrix, rows of `fixed` nodes made identity
        rows, reads from the vector [0, 1, -g_1..-g_M, degree_1+gmin..degree_N+gmin].

        All-to-all layered networks have no parallel edges, so each
        off-diagonal slot holds at most one edge."""
        if fixed not in self._slot_tables:
            n, m = self.n_nodes, self.n_edges
            diag = np.arange(n)
            slots = np.zeros((n, n), dtype=np.intp)
            slots[self.tail, self.head] = 2 + np.arange(m)
            slots[self.head, self.tail] = 2 + np.arange(m)
            slots[diag, diag] = 2 + m + diag
            rows = list(fixed)
            slots[rows, :] = 0
            slots[rows, rows] = 1
            self._slot_tables[fixed] = slots.ravel()
        return self._slot_tables[fixed]

    def nodal_matrix(self, g, fixed=()):
        """L = A diag(g) A^T + gmin I for a batch of conductances g (B, M), with
        the rows of the nodes `fixed` (shared by the batch) replaced by identity rows.

        Built by one gather from a per-instance vector of entries: of the
        variants measured (scatter into the (tail, head) slots, np.add.at,
        bincount, einsum, batched A diag(g) A^T, g @ a precomputed M x N^2
        map) it is the fastest from 8 to 112 nodes.
        """
        n, m = self.n_nodes, self.n_edges
        entries = np.empty((len(g), 2 + m + n))
        entries[:, 0] = 0.0
        entries[:, 1] = 1.0
        np.negative(g, out=entries[:, 2:2 + m])
        np.matmul(g, self.node_edge, out=entries[:, 2 + m:])
        entries[:, 2 + m:] += GMIN
        return entries.take(self.slots(fixed), axis=1).reshape(len(g), n, n)

    def solve(self, g, rhs, fixed, fixed_each=None):
        """Node voltages (B, N[, K]) with the nodes held at rhs[fixed nodes].

        `fixed` is a tuple of nodes fixed in every instance, `fixed_each` an
        optional (B, F) array of further per-instance fixed nodes; `rhs` is
        zero at free nodes.
        """
        L = self.nodal_matrix(g, fixed)
        if fixed_each is not None:
            rows = np.arange(len(g))[:, None]
            L[rows, fixed_each, :] = 0.0
            L[rows, fixed_each, fixed_each] = 1.0
        if rhs.ndim == 2:
            return np.linalg.solve(L, rhs[..., None])[..., 0]
        return np.linalg.solve(L, rhs)

    def edge_voltages(self, V):
        return V[:, self.tail] - V[:, self.head]


def winners(currents):
    """Output with the largest current; within TIE_RTOL of the max, lowest index."""
    top = currents.max(axis=-1, keepdims=True)
    return np.argmax(currents >= top - TIE_RTOL * np.abs(top), axis=-1)


class Batch:
    """State of B instances: resistances, alive edges and measures."""

    def __init__(self, net, n_instances, rng):
        self.net = net
        B, M, P = n_instances, net.n_edges, net.n_in
        self.n_patterns = P
        r0 = np.sqrt(RON * ROFF)
        self.R = np.clip(r0 * np.exp(SIGMA_R0 * rng.standard_normal((B, M))), RON, ROFF)
        self.alive = np.ones((B, M), dtype=bool)
        self.targets = rng.integers(net.n_out, size=(B, P))
        self.write_energy = np.zeros(B)
        self.read_power = np.full((B, MAX_ERAS, P), np.nan)   # the trace
        self.converged_era = np.full(B, -1)
        self.eras = np.zeros(B, dtype=int)
        self.updates = 0   # alive edges x substeps integrated, summed over instances

    # -- circuit ---------------------------------------------------------------

    def pulse(self, R, alive, energy, rhs, fixed, fixed_each=None):
        """One pulse of n_sub Euler substeps on a sub-batch (arrays updated in place)."""
        net, dt = self.net, TAU / N_SUB
        for _ in range(N_SUB):
            g = alive / R
            v = net.edge_voltages(net.solve(g, rhs, fixed, fixed_each))
            energy += dt * np.einsum("bm,bm->b", g, v * v)
            over = v - np.clip(v, -VT, VT)
            dR = -BETA * over
            if ALPHA:
                dR -= ALPHA * np.where(over == 0.0, v, 0.0)
            R += dt * np.where(alive, dR, 0.0)
            np.clip(R, RON, ROFF, out=R)
        self.updates += N_SUB * int(alive.sum())

    def read(self, R, alive, k):
        """Read pattern k: winners (B,) and dissipated read power (B,)."""
        net = self.net
        rhs = np.zeros((len(R), net.n_nodes))
        rhs[:, net.inputs[k]] = V_READ
        g = alive / R
        v = net.edge_voltages(net.solve(g, rhs, net.terminals))
        currents = (g * v) @ net.out_incidence
        return winners(currents), np.einsum("bm,bm->b", g, v * v)

    def punish(self, R, alive, energy, k, wrong_winner):
        """Input k at -V_punish, the wrong winner grounded, everything else floating."""
        net = self.net
        rhs = np.zeros((len(R), net.n_nodes))
        rhs[:, net.inputs[k]] = -V_PUNISH
        self.pulse(R, alive, energy, rhs, (int(net.inputs[k]),), net.outputs[wrong_winner][:, None])

    def normalize(self, R, alive, energy):
        """Every input at +V_norm, every output grounded."""
        net = self.net
        rhs = np.zeros((len(R), net.n_nodes))
        rhs[:, net.inputs] = V_NORM
        self.pulse(R, alive, energy, rhs, net.terminals)

    # -- learning from mistakes ---------------------------------------------------

    def era(self, active, era_index, rng):
        """Train the instances `active` for one era; return the mask of those with a mistake."""
        R, alive = self.R[active], self.alive[active]
        energy, targets = self.write_energy[active], self.targets[active]
        mistake = np.zeros(len(active), dtype=bool)
        for k in range(self.n_patterns):
            winner, power = self.read(R, alive, k)
            self.read_power[active, era_index, k] = power
            wrong = np.flatnonzero(winner != targets[:, k])
            if wrong.size == 0:
                continue
            mistake[wrong] = True
            Rw, aw, ew = R[wrong], alive[wrong], energy[wrong]
            self.punish(Rw, aw, ew, k, winner[wrong])
            self.normalize(Rw, aw, ew)
            R[wrong], energy[wrong] = Rw, ew
        # Stochastic pruning of the edges near Roff.
        near_off = alive & (R >= RON + F_PRUNE * (ROFF - RON))
        alive &= ~(near_off & (rng.random(alive.shape) < P_PRUNE))
        self.R[active], self.alive[active], self.write_energy[active] = R, alive, energy
        self.eras[active] += 1
        return mistake

    def train(self, rng):
        active = np.arange(len(self.R))
        for era_index in range(MAX_ERAS):
            if active.size == 0:
                break
            mistake = self.era(active, era_index, rng)
            self.converged_era[active[~mistake]] = era_index
            active = active[mistake]

    def final_read(self):
        """Read every pattern (one multi-right-hand-side solve): recalled and contrast."""
        net, P = self.net, self.n_patterns
        rhs = np.zeros((len(self.R), net.n_nodes, P))
        rhs[:, net.inputs[:P], np.arange(P)] = V_READ
        g = self.alive / self.R
        V = net.solve(g, rhs, net.terminals)                        # (B, N, P)
        v = V[:, net.tail, :] - V[:, net.head, :]                   # (B, M, P)
        currents = np.einsum("bmp,mo->bpo", g[:, :, None] * v, net.out_incidence)
        correct = winners(currents) == self.targets
        self.recalled = correct.sum(axis=1)
        self.learned_all = self.recalled == P
        target_current = np.take_along_axis(currents, self.targets[..., None], axis=2)[..., 0]
        others = currents.copy()
        np.put_along_axis(others, self.targets[..., None], -np.inf, axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.contrast = np.exp(np.log(target_current / others.max(axis=2)).mean(axis=1))
        self.pruned = (~self.alive).sum(axis=1)


def run(n_in, hidden, n_out, n_instances, seed):
    net = LayeredNetwork(n_in, hidden, n_out)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    batch = Batch(net, n_instances, rng)
    batch.train(rng)
    batch.final_read()
    seconds = time.perf_counter() - start
    return {
        "config": {"topology": "layered", "n_in": n_in, "hidden": list(hidden), "n_out": n_out,
                   "task": "one_hot", "n_patterns": n_in, "seed": seed,
                   "n_nodes": net.n_nodes, "n_edges": net.n_edges},
        "instances": n_instances,
        "seconds": seconds,
        "instances_per_s": n_instances / seconds,
        "updates_per_s": batch.updates / seconds,
        "mean_recalled_frac": float(batch.recalled.mean() / batch.n_patterns),
        "p_learned_all": float(batch.learned_all.mean()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-in", type=int, default=8)
    parser.add_argument("--hidden", type=int, nargs="+", default=[16])
    parser.add_argument("--n-out", type=int, default=8)
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.n_in, args.hidden, args.n_out, args.instances, args.seed)
    if args.json:
        print(json.dumps(result))
        return
    c = result["config"]
    print(f"numpy baseline: layered {c['n_in']}-{'-'.join(map(str, c['hidden']))}-{c['n_out']}, "
          f"{result['instances']} instances, {result['seconds']:.3f} s")
    print(f"  instances/s        {result['instances_per_s']:.2f}")
    print(f"  updates/s          {result['updates_per_s']:.4g}")
    print(f"  mean recalled/P    {result['mean_recalled_frac']:.4f}")
    print(f"  Pr[learned_all]    {result['p_learned_all']:.4f}")


if __name__ == "__main__":
    main()
