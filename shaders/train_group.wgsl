// Learning from mistakes (MODEL.md sections 2-7) for a chunk of independent
// instances, one workgroup per instance, in f32.
//
// The protocol of the CPU kernel, cut across the invocations of a
// workgroup; read it beside
// - src/protocol/training.rs  (era loop, read, pulse, prune),
// - src/model/step.rs         (the device step, Edges::step_runs),
// - src/protocol/phase.rs     (boundaries of read/punish/normalize, winner),
// - src/model/circuit.rs      (prepare: node split; solve: Schur + Cholesky,
//                              or conjugate gradients),
// - src/model/device.rs       (DeviceLaw::rate and step, c2c_factor),
// - src/rng.rs                (CounterRng: the counter hash).
//
// common.wgsl (which src/backend/gpu puts before this file) holds the
// buffers, the description of an instance, the draws and the phase
// boundaries.
//
// Two paths. The dense path (LARGE == 0, described here) keeps the
// instance's circuit in workgroup memory and solves a dense system; networks
// whose dense system does not fit take the iterative path (LARGE == 1,
// described at prepare_large), which keeps it in `fs` and solves by
// conjugate gradients, one step per dispatch (read_step and after). Both
// share the era loop's functions: read_pattern, move_devices, prune, and
// prepare/sums/solve, which choose the path.
//
// Who does what on the dense path (invocation `tid` of WG):
// - edges: invocation tid owns edges tid, tid + WG, ... and keeps their
//   resistance, bounds, threshold and ends in registers for the whole
//   dispatch; their conductances are shared (`g`), for the node sums and
//   the Schur complement, and each keeps its entry of the link table;
// - nodes, eliminated nodes and the entries of the packed lower triangle of
//   the dense system (with the right-hand side as one more row): strided
//   over the invocations, stage by stage;
// - the node split of a boundary (prepare), once per read or pulse, as in
//   circuit.rs: from node bit sets, in parallel, except the breadth-first
//   search and the greedy independent sets, which invocation 0 runs. With
//   REUSE (a small dense bound), the quiet split where it is cheaper, and
//   the eliminated nodes' share of the dense system kept from substep to
//   substep until one of their edges moves, as circuit.rs does.
// A barrier separates each stage; the Cholesky factorisation takes one per
// PIVOTS pivots (2 unless MEMSWEEP_GROUP_PIVOTS says 1) and the back
// substitution one per four rows. Everything that steers
// control flow is loaded through workgroupUniformLoad, so every invocation
// takes the same branches.
//
// One dispatch runs patterns chunk.pattern..chunk.pattern_end of an era for
// every instance still training (and, with chunk.end_era, the era's end):
// the host cuts an era into as few dispatches as the driver allows. What
// survives between dispatches is in global memory (common.wgsl): the edge
// slots ron, roff, vt, r, g of `fs` and alive of `us`, interleaved by lane
// (then, with CACHE, the kept split: at_split), and `state`. The differences in arithmetic from the
// CPU kernel are of rounding only (the order of a few sums: node sums are
// recomputed from the edges every substep, the energy is summed per
// invocation; pivots are scaled by their reciprocal square roots).

// shape begin: GroupShape::source (src/backend/gpu/group.rs) replaces
// these lines.
const WG: u32 = 64u;
const M_MAX: u32 = 256u;
const N_MAX: u32 = 32u;
const D_MAX: u32 = 30u;
const E_PER: u32 = 4u;
const PIVOTS: u32 = 2u;
const REPEAT: u32 = 0u;
const REUSE: u32 = 1u;
const CACHE: u32 = 1u;
const O_MAX: u32 = 32u;
const LARGE: u32 = 0u;
const CG_CAP: u32 = 0xffffffffu;
// shape end

// Packed lower triangle of the dense system, rows 0..=D_MAX (the last row
// used holds the right-hand side): entry (i, k), k <= i, at i (i + 1) / 2 + k.
const S_LEN: u32 = (D_MAX + 1u) * (D_MAX + 2u) / 2u;
// The link table: the conductance between eliminated node c and dense node
// a at c * n_dense + a (0 where they are not joined); n_eliminated *
// n_dense <= N_MAX^2 / 4.
const L_LEN: u32 = (N_MAX * N_MAX + 3u) / 4u + 1u;
// 32-bit words of a node set.
const W: u32 = (N_MAX + 31u) / 32u;
// No link slot.
const NONE: u32 = 0xffffffffu;

// Shared by the workgroup: the instance's circuit.
// Conductances (with LARGE, in `fs` instead: g_of, set_g).
var<workgroup> g: array<f32, (M_MAX - 1u) * (1u - LARGE) + 1u>;
var<workgroup> v: array<f32, N_MAX>;
var<workgroup> cond: array<f32, N_MAX>;
var<workgroup> inject: array<f32, N_MAX>;
var<workgroup> role: array<u32, N_MAX>;
var<workgroup> pos: array<u32, N_MAX>;
var<workgroup> dense_node: array<u32, N_MAX>;
var<workgroup> elim_node: array<u32, N_MAX>;
// Dense candidates in elimination order.
var<workgroup> order: array<u32, N_MAX>;
var<workgroup> degree: array<u32, N_MAX>;
// Node sets, W words each: alive neighbours of every node, fixed nodes,
// nodes reached from a fixed one.
var<workgroup> nbr: array<u32, N_MAX * W>;
var<workgroup> fixed_set: array<u32, W>;
var<workgroup> reached: array<u32, W>;
var<workgroup> link: array<f32, L_LEN>;
var<workgroup> elim_inv: array<f32, N_MAX>;
var<workgroup> elim_share: array<f32, N_MAX>;
var<workgroup> s: array<f32, S_LEN>;
// With REUSE, the eliminated nodes' share of the dense system (their Schur
// term and right-hand side, in the packing of `s`), kept while no edge
// touching an eliminated node moves.
var<workgroup> s_elim: array<f32, (S_LEN - 1u) * REUSE + 1u>;
// The reciprocal square roots of the pivots, and the dense solution.
var<workgroup> piv_inv: array<f32, D_MAX + 1u>;
var<workgroup> piv: array<f32, D_MAX + 1u>;
// Two pivots per barrier (PIVOTS == 2): the latest pivot column, in two
// halves used in turn.
var<workgroup> pair_col: array<f32, 2u * (D_MAX + 1u)>;
var<workgroup> out_cur: array<f32, O_MAX>;
var<workgroup> partial: array<f32, WG>;
var<workgroup> partial_count: array<u32, WG>;
// Whether a substep moved a device (MOVED_ANY), and one with an eliminated
// end (MOVED_ELIMINATED): substep s flags moved[s % 2], so that the next
// substep's flag can be cleared without a barrier of its own.
var<workgroup> moved: array<atomic<u32>, 2>;
const MOVED_ANY: u32 = 1u;
const MOVED_ELIMINATED: u32 = 2u;
var<workgroup> removed: atomic<u32>;
// Alive edges, counted at the start of a pulse.
var<workgroup> alive_count: atomic<u32>;
// (n_dense, n_eliminated, 1 if quiet) of the split.
var<workgroup> wg_split: vec3<u32>;
var<workgroup> wg_word: u32;
var<workgroup> wg_candidates: u32;
// 1 when some alive edge joins two dense nodes (the current split).
var<workgroup> wg_dense_pairs: atomic<u32>;

var<private> tid: u32;
// Nodes in the parity class.
var<private> class_size: u32;

// This invocation's edges.
var<private> e_r: array<f32, E_PER>;
var<private> e_ron: array<f32, E_PER>;
var<private> e_roff: array<f32, E_PER>;
var<private> e_vt: array<f32, E_PER>;
var<private> e_tail: array<u32, E_PER>;
var<private> e_head: array<u32, E_PER>;
var<private> e_neg: array<bool, E_PER>;
// The edge's entry of the link table under the current split, or NONE.
var<private> e_slot: array<u32, E_PER>;
// Whether the edge has an eliminated end under the current split.
var<private> e_elim: array<bool, E_PER>;
// The tag of the splits computed with the current alive edges: one more
// than the edges pruned so far, so that a zeroed entry is never current.
var<private> split_tag: u32;
// Joule this invocation's edges dissipated during the current pattern's
// pulses.
var<private> energy: f32;

// Edge e's conductance and node i's voltage: in the workgroup, or with
// LARGE in their slots of `fs`.
fn g_of(e: u32) -> f32 {
    if LARGE == 1u {
        return fs[at_g(e)];
    }
    return g[e];
}
fn set_g(e: u32, x: f32) {
    if LARGE == 1u {
        fs[at_g(e)] = x;
    } else {
        g[e] = x;
    }
}
fn volt(i: u32) -> f32 {
    if LARGE == 1u {
        return fs[at_v(i)];
    }
    return v[i];
}
fn is_alive(e: u32) -> bool { return g_of(e) > 0.0; }
// Entry (i, k) of the packed triangle.
fn tri(i: u32, k: u32) -> u32 { return i * (i + 1u) / 2u + k; }
// The row of the q-th entry of a packed triangle.
fn tri_row(q: u32) -> u32 {
    var i = u32((sqrt(8.0 * f32(q) + 1.0) - 1.0) * 0.5);
    if tri(i + 1u, 0u) <= q {
        i++;
    }
    if tri(i, 0u) > q {
        i--;
    }
    return i;
}

// The value invocation 0 passes, in every invocation.
fn broadcast(x: u32) -> u32 {
    if tid == 0u {
        wg_word = x;
    }
    return workgroupUniformLoad(&wg_word);
}

fn setup(index: u32, local: u32) {
    tid = local;
    describe(index);
    energy = 0.0;
    class_size = 0u;
    for (var w = 0u; w < (n_nodes + 31u) / 32u; w++) {
        class_size += countOneBits(class_word(w));
    }
}

// Bring the instance's edges in: resistances and bounds to registers,
// conductances to the workgroup; and this invocation's triangle entries.
fn load_edges() {
    for (var j = 0u; j < E_PER; j++) {
        let e = tid + j * WG;
        if e < n_edges {
            e_r[j] = fs[at_r(e)];
            e_ron[j] = fs[at_ron(e)];
            e_roff[j] = fs[at_roff(e)];
            e_vt[j] = fs[at_vt(e)];
            e_tail[j] = tail(e);
            e_head[j] = head(e);
            e_neg[j] = net[negative_at + e] != 0u;
            if LARGE == 0u {
                g[e] = fs[at_g(e)];
            }
        }
        e_slot[j] = NONE;
        e_elim[j] = false;
    }
    split_tag = state[lane].pruned + 1u;
    workgroupBarrier();
    if LARGE == 0u {
        neighbour_sets();
    }
}

fn store_edges() {
    for (var j = 0u; j < E_PER; j++) {
        let e = tid + j * WG;
        if e < n_edges {
            fs[at_r(e)] = e_r[j];
            let ge = g_of(e);
            if LARGE == 0u {
                fs[at_g(e)] = ge;
            }
            us[at_alive(e)] = select(0u, 1u, ge > 0.0);
        }
    }
}

// The alive neighbours of every node, as node sets (after loading the
// edges and after pruning).
fn neighbour_sets() {
    for (var i = tid; i < n_nodes; i += WG) {
        var members: array<u32, W>;
        for (var k = adj_start(i); k < adj_end(i); k++) {
            let j = adj_other(k);
            if is_alive(adj_edge(k)) {
                members[j / 32u] |= 1u << (j % 32u);
            }
        }
        for (var w = 0u; w < W; w++) {
            nbr[i * W + w] = members[w];
        }
    }
    workgroupBarrier();
}

fn in_set(set_word: u32, j: u32) -> bool {
    return ((set_word >> (j % 32u)) & 1u) != 0u;
}

// With CACHE, the split of the boundary that every read and every
// normalize pulse share (every terminal fixed; a split depends only on the
// fixed nodes and the alive edges), kept as circuit.rs
// Solver::prepare_cached keeps every boundary's: in `us` after the alive
// mask (zeroed at upload), its tag (`split_tag`), n_dense | n_eliminated
// << 16, and per node its role | position << 2. Punish pulses, a boundary
// per pattern and wrong winner, compute theirs.
const SHARED_SPLIT: u32 = 0u;
fn at_split(entry: u32, word: u32) -> u32 {
    return at(chunk.m_max + entry * (chunk.n_max + 2u) + word);
}

// The candidates (free nodes reached, role DENSE) ranked by (degree[i],
// node) into `order`, then split greedily (invocation 0), as circuit.rs
// Solver::split: a candidate none of whose alive neighbours is eliminated
// yet is eliminated. With `quiet_too`, a second split in the same order
// eliminates only quiet candidates (no fixed neighbour), and of the two
// the one with the cheaper estimated substep is kept (the quiet one only
// if its dense system fits D_MAX). Returns (n_dense, n_eliminated, 1 if
// the quiet split was kept).
fn rank_and_split(quiet_too: bool) -> vec3<u32> {
    // Each candidate's place in the order by (degree[i], node).
    var mine = 0u;
    for (var i = tid; i < n_nodes; i += WG) {
        if role[i] == DENSE {
            let key = degree[i];
            var rank = 0u;
            for (var j = 0u; j < n_nodes; j++) {
                if role[j] == DENSE && (degree[j] < key || (degree[j] == key && j < i)) {
                    rank++;
                }
            }
            order[rank] = i;
            mine++;
        }
    }
    partial_count[tid] = mine;
    workgroupBarrier();
    if tid == 0u {
        var candidates = 0u;
        for (var t = 0u; t < WG; t++) {
            candidates += partial_count[t];
        }
        // Both splits at once, as node sets of the eliminated.
        var greedy: array<u32, W>;
        var quiet: array<u32, W>;
        var ne = 0u;
        var ne_quiet = 0u;
        var driven_eliminated = false;
        for (var c = 0u; c < candidates; c++) {
            let i = order[c];
            var touches = 0u;
            var touches_quiet = 0u;
            var driven = 0u;
            for (var w = 0u; w < W; w++) {
                let around = nbr[i * W + w];
                touches |= around & greedy[w];
                touches_quiet |= around & quiet[w];
                driven |= around & fixed_set[w];
            }
            if touches == 0u {
                greedy[i / 32u] |= 1u << (i % 32u);
                ne++;
                driven_eliminated = driven_eliminated || driven != 0u;
            }
            if touches_quiet == 0u && driven == 0u {
                quiet[i / 32u] |= 1u << (i % 32u);
                ne_quiet++;
            }
        }
        // circuit.rs Solver::split's estimate, multiply-subtract pairs per
        // substep: the factorisation, and the Schur term, at a quarter
        // where it is seldom redone (no eliminated node is driven).
        let nd = candidates - ne;
        let nd_quiet = candidates - ne_quiet;
        var cost = nd * nd * nd / 6u;
        if driven_eliminated {
            cost += ne * nd * nd / 2u;
        } else {
            cost += ne * nd * nd / 8u;
        }
        let cost_quiet = nd_quiet * nd_quiet * nd_quiet / 6u + ne_quiet * nd_quiet * nd_quiet / 8u;
        let use_quiet = quiet_too && nd_quiet <= D_MAX && cost_quiet <= cost;
        if use_quiet {
            greedy = quiet;
        }
        var n_dense = 0u;
        var n_elim = 0u;
        for (var c = 0u; c < candidates; c++) {
            let i = order[c];
            if in_set(greedy[i / 32u], i) {
                role[i] = ELIMINATED;
                pos[i] = n_elim;
                elim_node[n_elim] = i;
                n_elim++;
            } else {
                pos[i] = n_dense;
                dense_node[n_dense] = i;
                n_dense++;
            }
        }
        wg_split = vec3<u32>(n_dense, n_elim, select(0u, 1u, use_quiet));
    }
    return workgroupUniformLoad(&wg_split);
}

// The split of the current boundary, computed (prepare_boundary without a
// current cache entry) and, with CACHE, kept in `entry` unless that is
// NONE: (n_dense, n_eliminated), both 0 if the dense system outgrew D_MAX.
fn split(entry: u32) -> vec3<u32> {
    for (var w = tid; w < W; w += WG) {
        var word = 0u;
        for (var b = 0u; b < 32u; b++) {
            let i = w * 32u + b;
            if i < n_nodes && role[i] == FIXED {
                word |= 1u << b;
            }
        }
        fixed_set[w] = word;
    }
    workgroupBarrier();
    // Every node joined to a fixed one by alive edges: breadth first, a
    // frontier at a time.
    if tid == 0u {
        var reach: array<u32, W>;
        var frontier: array<u32, W>;
        for (var w = 0u; w < W; w++) {
            reach[w] = fixed_set[w];
            frontier[w] = fixed_set[w];
        }
        var growing = true;
        while growing {
            var next: array<u32, W>;
            for (var w = 0u; w < W; w++) {
                var f = frontier[w];
                while f != 0u {
                    let i = w * 32u + countTrailingZeros(f);
                    f &= f - 1u;
                    for (var x = 0u; x < W; x++) {
                        next[x] |= nbr[i * W + x];
                    }
                }
            }
            growing = false;
            for (var w = 0u; w < W; w++) {
                frontier[w] = next[w] & ~reach[w];
                reach[w] |= frontier[w];
                growing = growing || frontier[w] != 0u;
            }
        }
        for (var w = 0u; w < W; w++) {
            reached[w] = reach[w];
        }
    }
    workgroupBarrier();
    // Free nodes reached are dense candidates; their free degree.
    for (var i = tid; i < n_nodes; i += WG) {
        if role[i] != FIXED && in_set(reached[i / 32u], i) {
            role[i] = DENSE;
            var deg = 0u;
            for (var w = 0u; w < W; w++) {
                deg += countOneBits(nbr[i * W + w] & ~fixed_set[w]);
            }
            degree[i] = deg;
        }
    }
    workgroupBarrier();
    var sp = rank_and_split(REUSE == 1u);
    // A greedy split that leaves more nodes dense than lie outside the
    // parity class: eliminate the class first instead (an independent set,
    // so all its free nodes go), then the rest in the same order, which
    // leaves at most the nodes outside the class dense.
    if sp.z == 0u && sp.x > n_nodes - class_size {
        for (var i = tid; i < n_nodes; i += WG) {
            if role[i] == ELIMINATED {
                role[i] = DENSE;
            }
            if role[i] == DENSE && !in_set(class_word(i / 32u), i) {
                degree[i] += N_MAX;
            }
        }
        workgroupBarrier();
        sp = rank_and_split(false);
    }
    if sp.x > D_MAX {
        failed = true;
        return vec3<u32>(0u);
    }
    if CACHE == 1u && entry != NONE {
        for (var i = tid; i < n_nodes; i += WG) {
            us[at_split(entry, 2u + i)] = role[i] | (pos[i] << 2u);
        }
        if tid == 0u {
            us[at_split(entry, 1u)] = sp.x | (sp.y << 16u);
            us[at_split(entry, 0u)] = split_tag;
        }
    }
    return sp;
}

// circuit.rs Solver::prepare for the current boundary: roles, the dense
// and eliminated nodes in the greedy order (fewest free neighbours first,
// then by node), of the two splits of rank_and_split the cheaper (or, where
// the greedy one is kept and leaves more nodes dense than lie outside the
// parity class, that class first), the link table and the fixed voltages;
// returns (n_dense, n_eliminated, 1 if an alive edge joins two dense
// nodes). Node sets make every step a few word operations; the one
// sequential step (the greedy independent set) runs in invocation 0.
fn prepare_boundary(entry: u32) -> vec3<u32> {
    workgroupBarrier();
    for (var i = tid; i < n_nodes; i += WG) {
        let fixed = is_fixed(i);
        role[i] = select(ISOLATED, FIXED, fixed);
        v[i] = select(0.0, fixed_volts(i), fixed);
    }
    if tid == 0u {
        atomicStore(&wg_dense_pairs, 0u);
    }
    var counts = NONE;
    if CACHE == 1u && entry != NONE && tid == 0u && us[at_split(entry, 0u)] == split_tag {
        counts = us[at_split(entry, 1u)];
    }
    counts = broadcast(counts);
    var sp: vec3<u32>;
    if counts != NONE {
        // The split as computed before with these alive edges.
        for (var i = tid; i < n_nodes; i += WG) {
            let word = us[at_split(entry, 2u + i)];
            let r = word & 3u;
            let p = word >> 2u;
            role[i] = r;
            pos[i] = p;
            if r == DENSE {
                dense_node[p] = i;
            } else if r == ELIMINATED {
                elim_node[p] = i;
            }
        }
        sp = vec3<u32>(counts & 0xffffu, counts >> 16u, 0u);
    } else {
        sp = split(entry);
    }
    let nd = sp.x;
    let ne = sp.y;
    // The link table: zero, then each edge between an eliminated and a
    // dense node writes its conductance to its entry (and keeps the entry,
    // to update it as it moves).
    for (var x = tid; x < ne * nd; x += WG) {
        link[x] = 0.0;
    }
    workgroupBarrier();
    var pairs = 0u;
    for (var j = 0u; j < E_PER; j++) {
        let e = tid + j * WG;
        var slot = NONE;
        var eliminated_end = false;
        if e < n_edges {
            let rt = role[e_tail[j]];
            let rh = role[e_head[j]];
            eliminated_end = rt == ELIMINATED || rh == ELIMINATED;
            if rt == ELIMINATED && rh == DENSE {
                slot = pos[e_tail[j]] * nd + pos[e_head[j]];
            } else if rh == ELIMINATED && rt == DENSE {
                slot = pos[e_head[j]] * nd + pos[e_tail[j]];
            } else if rt == DENSE && rh == DENSE && g[e] > 0.0 {
                pairs = 1u;
            }
            if slot != NONE {
                link[slot] = g[e];
            }
        }
        e_slot[j] = slot;
        e_elim[j] = eliminated_end;
    }
    if pairs != 0u {
        atomicOr(&wg_dense_pairs, 1u);
    }
    return vec3<u32>(nd, ne, workgroupUniformLoad(&wg_dense_pairs));
}

// circuit.rs NodeSums::fill, one node per invocation: conductance and
// injected current from the edges, in adjacency order; and for an
// eliminated node, its reciprocal diagonal and share of the right-hand
// side, or with `direct` (no dense system: every free node is eliminated)
// its voltage, as solve() would compute it.
fn node_sums(direct: bool) {
    for (var i = tid; i < n_nodes; i += WG) {
        var total = 0.0;
        var inj = 0.0;
        for (var k = adj_start(i); k < adj_end(i); k++) {
            let ge = g[adj_edge(k)];
            let j = adj_other(k);
            total += ge;
            if role[j] == FIXED {
                inj += ge * v[j];
            }
        }
        cond[i] = total;
        inject[i] = inj;
        // What solve() needs of an eliminated node.
        if role[i] == ELIMINATED {
            let inv = 1.0 / (d.gmin + total);
            elim_inv[pos[i]] = inv;
            elim_share[pos[i]] = inj * inv;
            if direct {
                v[i] = inj / (d.gmin + total);
            }
        }
    }
    workgroupBarrier();
}

// The Cholesky factorisation of solve() two pivots per barrier, with the
// same operations in the same order as one pivot at a time. For pivots j
// and j + 1, every invocation computes both pivots; each trailing entry
// (i, k) past column j + 1 takes both updates, with s(i, j + 1) and
// s(k, j + 1) as pivot j leaves them computed on the spot. Column j + 1
// itself, which the other entries read, is written to one half of
// `pair_col` and copied into the triangle in the next pair's step, which
// reads only columns j + 2 on (the last pair's goes straight in).
fn cholesky_pairs(nd: u32) {
    for (var j = 0u; j < nd; j += 2u) {
        let pair = j + 1u < nd;
        let inv0 = inverseSqrt(s[tri(j, j)]);
        var l10 = 0.0;
        var inv1 = 0.0;
        if pair {
            l10 = s[tri(j + 1u, j)] * inv0;
            inv1 = inverseSqrt(s[tri(j + 1u, j + 1u)] - l10 * l10);
        }
        if tid == 0u {
            piv_inv[j] = inv0;
            if pair {
                piv_inv[j + 1u] = inv1;
            }
        }
        let half = (j / 2u) % 2u;
        // The previous pair's column j - 1, rows j..=nd.
        if j > 0u {
            let done = (1u - half) * (D_MAX + 1u);
            for (var i = j + tid; i <= nd; i += WG) {
                s[tri(i, j - 1u)] = pair_col[done + i];
            }
        }
        // The trailing entries of pivot j (none if it is the last).
        for (var q = tid; q + 1u < tri(nd - j, 0u); q += WG) {
            let a = tri_row(q);
            let i = j + 1u + a;
            let k = j + 1u + q - tri(a, 0u);
            let li = s[tri(i, j)] * inv0;
            if k == j + 1u {
                // Below the pivot, which every invocation reads. In the
                // last pair's step no entry past column j + 1 reads this
                // one: it goes straight into the triangle.
                if i > k {
                    let x = s[tri(i, k)] - li * l10;
                    if j + 2u == nd {
                        s[tri(i, k)] = x;
                    } else {
                        pair_col[half * (D_MAX + 1u) + i] = x;
                    }
                }
            } else {
                let lk = s[tri(k, j)] * inv0;
                let mi = (s[tri(i, j + 1u)] - li * l10) * inv1;
                let mk = (s[tri(k, j + 1u)] - lk * l10) * inv1;
                s[tri(i, k)] = (s[tri(i, k)] - li * lk) - mi * mk;
            }
        }
        workgroupBarrier();
    }
}

// Back substitution: x of row top - 1 - m of the block below `top`, from
// the block's rows below it (x.x for row top - 1, and so on).
fn block_x(rhs_row: u32, top: u32, m: u32, x: vec4<f32>) -> f32 {
    let r = top - 1u - m;
    var w = s[rhs_row + r];
    if m > 0u {
        w -= s[tri(top - 1u, r)] * x.x;
    }
    if m > 1u {
        w -= s[tri(top - 2u, r)] * x.y;
    }
    if m > 2u {
        w -= s[tri(top - 3u, r)] * x.z;
    }
    return (w * piv_inv[r]) * piv_inv[r];
}

// circuit.rs Solver::solve_from_sums: node voltages for the split `sp`,
// from the sums of the last sums() (which, without a dense system, set
// them itself).
fn solve_split(sp: vec3<u32>, fresh: bool) {
    let nd = sp.x;
    let ne = sp.y;
    if nd == 0u {
        return;
    }
    // Each entry of rows 0..=nd (less entry (nd, nd)), strided over the
    // invocations. With `fresh`, the eliminated nodes' share is computed
    // (into s_elim): less the rank-one terms of eliminating each c
    // (coupling every pair of c's dense neighbours), in order of c, and for
    // row nd (the right-hand side) the currents they pass on; else it is
    // the one kept from an earlier substep (no edge of an eliminated node
    // has moved since). Then the dense node's own diagonal, or injected
    // current, is added.
    let entries = tri(nd + 1u, 0u) - 1u;
    for (var p = tid; p < entries; p += WG) {
        let i = tri_row(p);
        let k = p - tri(i, 0u);
        var term = 0.0;
        if fresh {
            if i < nd {
                for (var c = 0u; c < ne; c++) {
                    let row = c * nd;
                    term -= (link[row + i] * elim_inv[c]) * link[row + k];
                }
            } else {
                for (var c = 0u; c < ne; c++) {
                    term += link[c * nd + k] * elim_share[c];
                }
            }
            if REUSE == 1u {
                s_elim[p] = term;
            }
        } else {
            term = s_elim[p];
        }
        if i == nd {
            s[p] = term + inject[dense_node[k]];
        } else if i == k {
            s[p] = term + (d.gmin + cond[dense_node[i]]);
        } else {
            s[p] = term;
        }
    }
    workgroupBarrier();
    // Couplings between dense nodes (none in a network of one hidden layer).
    if sp.z != 0u {
        for (var a = tid; a < nd; a += WG) {
            let i = dense_node[a];
            let base = tri(a, 0u);
            for (var k = adj_start(i); k < adj_end(i); k++) {
                let j = adj_other(k);
                if role[j] == DENSE && pos[j] < a {
                    s[base + pos[j]] -= g[adj_edge(k)];
                }
            }
        }
        workgroupBarrier();
    }
    // Right-looking Cholesky of the triangle, the right-hand side row riding
    // along (forward substitution). Column j is left unscaled: L_ij is
    // s(i, j) * piv_inv[j], and y_j is s(nd, j) * piv_inv[j].
    if PIVOTS == 2u {
        cholesky_pairs(nd);
    } else {
        for (var j = 0u; j < nd; j++) {
            let inv = inverseSqrt(s[tri(j, j)]);
            if tid == 0u {
                piv_inv[j] = inv;
            }
            // The trailing entries: rows j + 1..=nd, columns j + 1 up to
            // the row (at most nd - 1): a triangle of nd - j rows less its
            // last entry, strided over the invocations.
            let rows = nd - j;
            for (var q = tid; q + 1u < tri(rows, 0u); q += WG) {
                let a = tri_row(q);
                let i = j + 1u + a;
                let k = j + 1u + q - tri(a, 0u);
                s[tri(i, k)] -= (s[tri(i, j)] * inv) * (s[tri(k, j)] * inv);
            }
            workgroupBarrier();
        }
    }
    // Back substitution, four rows per barrier, last row first: with w_a =
    // s(nd, a) - sum over b > a of s(b, a) x_b (kept in row nd), x_a is
    // w_a * piv_inv[a]^2. Every invocation computes the block's x, x.x for
    // its last row top - 1 up to x.w for row top - 4 (into piv, by
    // invocation 0); each row above the block then takes the block's
    // terms, last row first. (Named components, not an array indexed by
    // the row, which a GPU would keep in memory rather than registers.)
    let rhs_row = tri(nd, 0u);
    for (var step = 0u; step < (nd + 3u) / 4u; step++) {
        let top = nd - 4u * step;
        let rows = min(top, 4u);
        var x = vec4<f32>(0.0);
        x.x = block_x(rhs_row, top, 0u, x);
        if rows > 1u {
            x.y = block_x(rhs_row, top, 1u, x);
        }
        if rows > 2u {
            x.z = block_x(rhs_row, top, 2u, x);
        }
        if rows > 3u {
            x.w = block_x(rhs_row, top, 3u, x);
        }
        if tid == 0u {
            for (var m = 0u; m < rows; m++) {
                piv[top - 1u - m] = x[m];
            }
        }
        // Rows above the block (only below a full one).
        for (var a = tid; a + 4u < top; a += WG) {
            var w = s[rhs_row + a];
            w -= s[tri(top - 1u, a)] * x.x;
            w -= s[tri(top - 2u, a)] * x.y;
            w -= s[tri(top - 3u, a)] * x.z;
            w -= s[tri(top - 4u, a)] * x.w;
            s[rhs_row + a] = w;
        }
        workgroupBarrier();
    }
    // The node voltages: dense ones as solved, eliminated ones from them.
    for (var a = tid; a < nd; a += WG) {
        v[dense_node[a]] = piv[a];
    }
    for (var c = tid; c < ne; c += WG) {
        let i = elim_node[c];
        var total = inject[i];
        let row = c * nd;
        for (var a = 0u; a < nd; a++) {
            total += link[row + a] * piv[a];
        }
        v[i] = total / (d.gmin + cond[i]);
    }
    workgroupBarrier();
}

// The iterative path (LARGE): networks whose dense system does not fit the
// workgroup. The conductances, node voltages and the vectors of the solve
// live in `fs`, each node's kind in `us`, and the solve is circuit.rs
// Solver::solve_iterative: Jacobi-preconditioned conjugate gradients on
// the free nodes that something drives, started from the last solve's
// voltages (within a pulse, extrapolated from the last four: start_of), until
// r^T D^-1 r <= tol^2 b^T D^-1 b (tol: real.rs CG_TOLERANCE, f32). Nodes
// are strided over the invocations: each computes its nodes' rows of the
// product A p from their adjacency, and the two dot products of an
// iteration are tree reductions over the workgroup. One difference from
// circuit.rs: it runs its components one by one, each to the stopping rule
// on its own; here the driven components are solved together, to the rule
// on their union (the same system, the same solution; after pruning has
// split the network, a small component is solved to a looser share of
// the tolerance).

// The tolerance of the stopping rule (real.rs CG_TOLERANCE, f32).
const CG_TOLERANCE: f32 = 1e-6;

// Node kinds, in `us` after the alive mask (at_kind): fixed; free and in a
// component of the alive graph that some fixed node drives (an unknown of
// the solve); free and undriven (isolated, cut off by pruning, or joined
// only to grounded nodes), which sits at exactly 0 V.
const KIND_UNDRIVEN: u32 = 0u;
const KIND_DRIVEN: u32 = 1u;
const KIND_FIXED: u32 = 2u;
fn at_kind(i: u32) -> u32 { return at(chunk.m_max + i); }

// Node vectors of the solve in `fs`, after v and the currents: the
// voltages of the solves one, two and three before the last (H1..H3; v
// holds the last), the diagonal (gmin + total conductance), the injected
// current b, the residual r, the search direction p, A p.
const CG_H1: u32 = 0u;
const CG_DIAG: u32 = 1u;
const CG_B: u32 = 2u;
const CG_R: u32 = 3u;
const CG_P: u32 = 4u;
const CG_Q: u32 = 5u;
const CG_H2: u32 = 6u;
const CG_H3: u32 = 7u;
fn at_cg(vector: u32, i: u32) -> u32 {
    return at(5u * chunk.m_max + chunk.n_max + chunk.o_max + vector * chunk.n_max + i);
}

// Rounds of the spread of the driven kind that set a node (three flags
// used in turn, so that one can be cleared while no invocation reads it).
var<workgroup> spread: array<atomic<u32>, 3>;
var<workgroup> wg_pair: vec2<f32>;
var<workgroup> partial2: array<vec2<f32>, (WG - 1u) * LARGE + 1u>;
// Solves since the boundary was prepared (the substeps of the pulse so
// far): a solve starts from the extrapolation of the last ones
// (`start_of`).
var<private> boundary_solves: u32;

// circuit.rs EXTRAPOLATION: the start of a solve after `solves` solves of
// this pulse, from the voltages of the last four (latest first): the
// polynomial through the last min(solves, 4), one substep on.
fn start_of(solves: u32, h0: f32, h1: f32, h2: f32, h3: f32) -> f32 {
    switch min(solves, 4u) {
        case 2u: { return 2.0 * h0 - h1; }
        case 3u: { return 3.0 * h0 - 3.0 * h1 + h2; }
        case 4u: { return 4.0 * h0 - 6.0 * h1 + 4.0 * h2 - h3; }
        default: { return h0; }
    }
}

// Storage written by one invocation, read by another: a barrier for both
// address spaces.
fn sync() {
    storageBarrier();
    workgroupBarrier();
}

// The sums of both components of x over the workgroup, in every
// invocation (a tree, in a fixed order).
fn reduce_all(x: vec2<f32>) -> vec2<f32> {
    partial2[tid] = x;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if tid < half {
            partial2[tid] += partial2[tid + half];
        }
        workgroupBarrier();
    }
    if tid == 0u {
        wg_pair = partial2[0];
    }
    return workgroupUniformLoad(&wg_pair);
}

// circuit.rs Solver::prepare on the iterative path: the fixed nodes and
// their voltages, and which free nodes are unknowns: those joined by alive
// edges to a free node into which a fixed node at a nonzero voltage
// injects current (circuit.rs CgVectors::solve sets a component with
// b = 0 to 0 V; so do isolated nodes). The driven kind spreads a ring of
// neighbours per round.
fn prepare_large() {
    sync();
    if tid == 0u {
        for (var f = 0u; f < 3u; f++) {
            atomicStore(&spread[f], 0u);
        }
    }
    boundary_solves = 0u;
    for (var i = tid; i < n_nodes; i += WG) {
        let fixed = is_fixed(i);
        us[at_kind(i)] = select(KIND_UNDRIVEN, KIND_FIXED, fixed);
        if fixed {
            fs[at_v(i)] = fixed_volts(i);
        }
    }
    sync();
    for (var i = tid; i < n_nodes; i += WG) {
        if us[at_kind(i)] == KIND_UNDRIVEN {
            var driven = false;
            for (var k = adj_start(i); k < adj_end(i); k++) {
                let j = adj_other(k);
                if us[at_kind(j)] == KIND_FIXED && fs[at_v(j)] != 0.0 && is_alive(adj_edge(k)) {
                    driven = true;
                }
            }
            if driven {
                us[at_kind(i)] = KIND_DRIVEN;
            }
        }
    }
    let rounds = broadcast(n_nodes);
    for (var round = 0u; round <= rounds; round++) {
        if tid == 0u {
            atomicStore(&spread[(round + 1u) % 3u], 0u);
        }
        sync();
        var grew = false;
        for (var i = tid; i < n_nodes; i += WG) {
            if us[at_kind(i)] == KIND_UNDRIVEN {
                var driven = false;
                for (var k = adj_start(i); k < adj_end(i); k++) {
                    if us[at_kind(adj_other(k))] == KIND_DRIVEN && is_alive(adj_edge(k)) {
                        driven = true;
                    }
                }
                if driven {
                    us[at_kind(i)] = KIND_DRIVEN;
                    grew = true;
                }
            }
        }
        if grew {
            atomicOr(&spread[round % 3u], 1u);
        }
        storageBarrier();
        if workgroupUniformLoad(&spread[round % 3u]) == 0u {
            break;
        }
    }
    sync();
}

// circuit.rs NodeSums::fill for the unknowns: the diagonal and the
// injected current.
fn sums_large() {
    for (var i = tid; i < n_nodes; i += WG) {
        if us[at_kind(i)] == KIND_DRIVEN {
            var total = 0.0;
            var inj = 0.0;
            for (var k = adj_start(i); k < adj_end(i); k++) {
                let ge = g_of(adj_edge(k));
                let j = adj_other(k);
                total += ge;
                if us[at_kind(j)] == KIND_FIXED {
                    inj += ge * fs[at_v(j)];
                }
            }
            fs[at_cg(CG_DIAG, i)] = d.gmin + total;
            fs[at_cg(CG_B, i)] = inj;
        }
    }
    sync();
}

// Row i of A p (the links summed as in sliced.rs SlicedRows::sweep; the
// CPU preconditions by Gauss-Seidel, this path by the diagonal): p is 0 at every node that
// is not an unknown, so no neighbour's kind needs a look.
fn cg_product(i: u32) -> f32 {
    var sum = 0.0;
    for (var k = adj_start(i); k < adj_end(i); k++) {
        sum += g_of(adj_edge(k)) * fs[at_cg(CG_P, adj_other(k))];
    }
    return fs[at_cg(CG_DIAG, i)] * fs[at_cg(CG_P, i)] - sum;
}

// circuit.rs Solver::solve_iterative and CgVectors::solve: the voltages
// of the unknowns (into v), the undriven free nodes at 0 V.
fn solve_large() {
    let solves = boundary_solves;
    boundary_solves++;
    // The start, and p = x there (0 off the unknowns) for r = b - A x.
    for (var i = tid; i < n_nodes; i += WG) {
        let kind = us[at_kind(i)];
        var x = 0.0;
        if kind != KIND_FIXED {
            let now = fs[at_v(i)];
            let h1 = fs[at_cg(CG_H1, i)];
            let h2 = fs[at_cg(CG_H2, i)];
            if kind == KIND_DRIVEN {
                // Voltages move smoothly from substep to substep.
                x = start_of(solves, now, h1, h2, fs[at_cg(CG_H3, i)]);
            }
            fs[at_cg(CG_H3, i)] = h2;
            fs[at_cg(CG_H2, i)] = h1;
            fs[at_cg(CG_H1, i)] = now;
            fs[at_v(i)] = x;
        }
        fs[at_cg(CG_P, i)] = x;
    }
    sync();
    var own = vec2<f32>(0.0);
    for (var i = tid; i < n_nodes; i += WG) {
        if us[at_kind(i)] == KIND_DRIVEN {
            let r = fs[at_cg(CG_B, i)] - cg_product(i);
            let b = fs[at_cg(CG_B, i)];
            let inv = 1.0 / fs[at_cg(CG_DIAG, i)];
            fs[at_cg(CG_R, i)] = r;
            own += vec2<f32>(r * (r * inv), b * b * inv);
        }
    }
    // (The reduction's barriers order every read of p above before the
    // writes below.)
    let start = reduce_all(own);
    for (var i = tid; i < n_nodes; i += WG) {
        if us[at_kind(i)] == KIND_DRIVEN {
            fs[at_cg(CG_P, i)] = fs[at_cg(CG_R, i)] * (1.0 / fs[at_cg(CG_DIAG, i)]);
        }
    }
    sync();
    var rz = start.x;
    let stop = CG_TOLERANCE * CG_TOLERANCE * start.y;
    // circuit.rs caps a component at four iterations per unknown and 100;
    // on lavapipe the loop budget may cap it lower (CG_CAP).
    let cap = broadcast(min(4u * n_nodes + 100u, CG_CAP));
    for (var it = 0u; it < cap && rz > stop; it++) {
        var pq = 0.0;
        for (var i = tid; i < n_nodes; i += WG) {
            if us[at_kind(i)] == KIND_DRIVEN {
                let q = cg_product(i);
                fs[at_cg(CG_Q, i)] = q;
                pq += fs[at_cg(CG_P, i)] * q;
            }
        }
        let alpha = rz / reduce_all(vec2<f32>(pq, 0.0)).x;
        var rz_own = 0.0;
        for (var i = tid; i < n_nodes; i += WG) {
            if us[at_kind(i)] == KIND_DRIVEN {
                fs[at_v(i)] += alpha * fs[at_cg(CG_P, i)];
                let r = fs[at_cg(CG_R, i)] - alpha * fs[at_cg(CG_Q, i)];
                fs[at_cg(CG_R, i)] = r;
                rz_own += r * (r * (1.0 / fs[at_cg(CG_DIAG, i)]));
            }
        }
        let rz_next = reduce_all(vec2<f32>(rz_own, 0.0)).x;
        let beta = rz_next / rz;
        rz = rz_next;
        for (var i = tid; i < n_nodes; i += WG) {
            if us[at_kind(i)] == KIND_DRIVEN {
                let z = fs[at_cg(CG_R, i)] * (1.0 / fs[at_cg(CG_DIAG, i)]);
                fs[at_cg(CG_P, i)] = z + beta * fs[at_cg(CG_P, i)];
            }
        }
        sync();
    }
    sync();
}

// The three stages as the kernel calls them. With a bit of the shape's
// REPEAT set (MEMSWEEP_GROUP_REPEAT, a knob for measuring what a stage
// costs) the stage runs twice: each recomputes all it writes from what it
// reads, and none reads what it writes, so the second run changes nothing.
const REPEAT_PREPARE: u32 = 1u;
const REPEAT_SUMS: u32 = 2u;
const REPEAT_SOLVE: u32 = 4u;

fn prepare(entry: u32) -> vec3<u32> {
    if LARGE == 1u {
        prepare_large();
        return vec3<u32>(0u);
    }
    if (REPEAT & REPEAT_PREPARE) != 0u {
        prepare_boundary(entry);
    }
    return prepare_boundary(entry);
}

fn sums(direct: bool) {
    if LARGE == 1u {
        sums_large();
        return;
    }
    if (REPEAT & REPEAT_SUMS) != 0u {
        node_sums(direct);
    }
    node_sums(direct);
}

fn solve(sp: vec3<u32>, fresh: bool) {
    if LARGE == 1u {
        solve_large();
        return;
    }
    if (REPEAT & REPEAT_SOLVE) != 0u {
        solve_split(sp, fresh);
    }
    solve_split(sp, fresh);
}

// Power dissipated in this invocation's edges, watt.
fn own_power() -> f32 {
    var p = 0.0;
    for (var j = 0u; j < E_PER; j++) {
        let e = tid + j * WG;
        if e < n_edges {
            let dv = volt(e_tail[j]) - volt(e_head[j]);
            p += g_of(e) * dv * dv;
        }
    }
    return p;
}

// Sum of every invocation's x, in invocation 0 (others get a partial).
fn reduce(x: f32) -> f32 {
    partial[tid] = x;
    workgroupBarrier();
    var total = 0.0;
    if tid == 0u {
        for (var t = 0u; t < WG; t++) {
            total += partial[t];
        }
    }
    workgroupBarrier();
    return total;
}

fn node_current(node: u32) -> f32 {
    var i_out = 0.0;
    for (var k = adj_start(node); k < adj_end(node); k++) {
        i_out += g_of(adj_edge(k)) * (volt(adj_other(k)) - volt(node));
    }
    return i_out;
}

fn winner() -> u32 {
    var largest = out_cur[0];
    for (var o = 1u; o < d.n_out; o++) {
        let c = out_cur[o];
        if c > largest {
            largest = c;
        }
    }
    let band = tie_band(largest);
    var w = d.n_out;
    for (var o = 0u; o < d.n_out; o++) {
        if w == d.n_out && out_cur[o] >= band {
            w = o;
        }
    }
    return select(w, 0u, w == d.n_out);
}

// training.rs Trainer::read (with read noise).
fn read_pattern(era: u32, k: u32) -> ReadResult {
    phase = READ;
    phase_pattern = k;
    let sp = prepare(SHARED_SPLIT);
    sums(sp.x == 0u);
    solve(sp, true);
    for (var o = tid; o < d.n_out; o += WG) {
        out_cur[o] = node_current(output_node(o)) * read_noise(era, k, o);
    }
    let p = reduce(own_power());
    var w = 0u;
    if tid == 0u {
        w = winner();
    }
    return ReadResult(broadcast(w), p);
}

// step.rs Edges::step_runs for this invocation's edges; sets
// moved[flag] if a resistance changed (MOVED_ANY), and if one with an
// eliminated end did (MOVED_ELIMINATED).
fn move_devices(dt: f32, counter: vec3<u32>, flag: u32) {
    let sigma = d.sigma_c2c;
    var changed = 0u;
    for (var j = 0u; j < E_PER; j++) {
        let e = tid + j * WG;
        if e < n_edges && is_alive(e) {
            var dv = volt(e_tail[j]) - volt(e_head[j]);
            if e_neg[j] {
                dv = -dv;
            }
            let r_old = e_r[j];
            let rate = device_rate(dv, e_vt[j], r_old, e_ron[j], e_roff[j]);
            if rate != 0.0 {
                var noise = 1.0;
                if sigma > 0.0 {
                    noise = c2c_factor(sigma, normal(vec4<u32>(counter, e)));
                }
                let r = device_step(r_old, rate, dt, noise, e_ron[j], e_roff[j]);
                if r != r_old {
                    e_r[j] = r;
                    let ge = 1.0 / r;
                    set_g(e, ge);
                    if e_slot[j] != NONE {
                        link[e_slot[j]] = ge;
                    }
                    changed |= select(MOVED_ANY, MOVED_ANY | MOVED_ELIMINATED, e_elim[j]);
                }
            }
        }
    }
    if changed != 0u {
        atomicOr(&moved[flag], changed);
    }
}

fn set_pulse_phase(pulse: u32, k: u32, w: u32) {
    phase = select(NORMALIZE, PUNISH, pulse == PULSE_PUNISH);
    phase_pattern = k;
    phase_winner = w;
}

// training.rs Trainer::pulse: the split, then n_sub Euler substeps; once a
// substep moves nothing, the rest of the pulse is accounted at once.
// Returns the alive edges, for the update count.
fn pulse(which: u32, k: u32, w: u32, era: u32, n_sub: u32) -> u32 {
    set_pulse_phase(which, k, w);
    if tid == 0u {
        atomicStore(&alive_count, 0u);
    }
    // prepare() begins with a barrier, sums() ends with one.
    let sp = prepare(select(SHARED_SPLIT, NONE, which == PULSE_PUNISH));
    var mine = 0u;
    for (var j = 0u; j < E_PER; j++) {
        let e = tid + j * WG;
        if e < n_edges && is_alive(e) {
            mine++;
        }
    }
    if mine > 0u {
        atomicAdd(&alive_count, mine);
    }
    // Substep 0's flag: its last readers (the previous pulse) are behind
    // prepare()'s barriers, its writers behind sums()'.
    if tid == 0u {
        atomicStore(&moved[0], 0u);
    }
    let direct = sp.x == 0u;
    sums(direct);
    var moving = true;
    // Whether the eliminated nodes' share of the dense system must be
    // computed anew: at the first substep, and after one that moved an
    // edge of an eliminated node.
    var fresh = true;
    for (var sub = 0u; sub < n_sub; sub++) {
        if moving {
            // The next substep's flag: its last readers are behind a
            // barrier of sums() or prepare(), its writers behind this
            // substep's load of the flag.
            if tid == 0u {
                atomicStore(&moved[(sub + 1u) % 2u], 0u);
            }
            solve(sp, fresh);
            let p = own_power();
            move_devices(d.dt, vec3<u32>(era, 2u * k + which, sub), sub % 2u);
            let flags = workgroupUniformLoad(&moved[sub % 2u]);
            moving = flags != 0u;
            fresh = REUSE == 0u || (flags & MOVED_ELIMINATED) != 0u;
            if moving {
                energy += p * d.dt;
                // For the next substep's solve: none follows the last (and
                // the voltages stay those it was stepped with).
                if sub + 1u < n_sub {
                    sums(direct);
                }
            } else {
                energy += p * d.dt * f32(n_sub - sub);
            }
        }
    }
    return atomicLoad(&alive_count);
}

fn add_updates(st: ptr<function, InstanceState>, x: u32) {
    let lo = (*st).updates_lo + x;
    if lo < x {
        (*st).updates_hi += 1u;
    }
    (*st).updates_lo = lo;
}

// training.rs Trainer::prune for this invocation's edges, at the end of
// `era`; the count goes to `removed`.
fn prune(era: u32) {
    var count = 0u;
    for (var j = 0u; j < E_PER; j++) {
        let e = tid + j * WG;
        if e < n_edges && d.prune_below != 0u && is_alive(e) {
            if prunes(era, e, e_r[j], e_ron[j], e_roff[j]) {
                set_g(e, 0.0);
                count++;
            }
        }
    }
    if count > 0u {
        atomicAdd(&removed, count);
    }
}

// Add the energy of the pattern's pulses to the instance's (in invocation
// 0). Once per pattern, whatever the patterns per dispatch, so that the
// sum's rounding depends on the instance alone.
fn bank_energy(st: ptr<function, InstanceState>) {
    let e = reduce(energy);
    energy = 0.0;
    if tid == 0u {
        (*st).energy_write += e;
    }
}

// Keep the instance's state (in invocation 0), and flag a step that went
// wrong.
fn finish(st: ptr<function, InstanceState>) {
    if tid == 0u {
        if failed {
            (*st).status = FAILED;
        }
        if !loops_intact() {
            (*st).status = LOOP_LIMIT;
        }
        state[lane] = *st;
    }
}

// Patterns chunk.pattern..chunk.pattern_end of the current era, each a read
// and, after a mistake, a punish and a normalize pulse; with chunk.end_era,
// the era's end: prune after a mistake, then stop on convergence or at
// max_eras. With
// chunk.eras above 1, that many whole eras, as many dispatches of one would.
@compute @workgroup_size(WG)
fn era_group(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if wid.x < chunk.n_lanes {
        setup(wid.x, local);
        var st = state[lane];
        var era = st.eras_run;
        if broadcast(st.status) == RUNNING {
            load_edges();
            let n_patterns = desc[wid.x].n_patterns;
            let n_sub = desc[wid.x].n_sub;
            let last = min(chunk.pattern_end, n_patterns);
            for (var round = 0u; round < chunk.eras; round++) {
                for (var k = chunk.pattern; k < last; k++) {
                    let rd = read_pattern(era, k);
                    let wanted = target_output(k);
                    if tid == 0u {
                        let correct = rd.winner == wanted;
                        let at = d.trace_off + era * d.n_patterns + k;
                        trace[at] = TraceEntry(select(0u, 1u, correct), rd.power);
                        st.winner = rd.winner;
                        if !correct {
                            st.mistakes++;
                        }
                    }
                    if rd.winner != wanted {
                        let alive_a = pulse(PULSE_PUNISH, k, rd.winner, era, n_sub);
                        let alive_b = pulse(PULSE_NORMALIZE, k, rd.winner, era, n_sub);
                        add_updates(&st, (alive_a + alive_b) * n_sub);
                        bank_energy(&st);
                    }
                }
                if chunk.end_era == 1u {
                    if tid == 0u {
                        atomicStore(&removed, 0u);
                    }
                    // A converged instance stops unpruned.
                    let mistaken = broadcast(st.mistakes) > 0u;
                    workgroupBarrier();
                    if mistaken {
                        prune(era);
                    }
                    let pruned = workgroupUniformLoad(&removed);
                    split_tag += pruned;
                    if tid == 0u {
                        close_era(&st, era, pruned);
                    }
                    // The next era, if this dispatch runs it and the
                    // instance still trains, with the alive edges' sets.
                    if broadcast(st.status) != RUNNING {
                        break;
                    }
                    era++;
                    if LARGE == 0u && pruned > 0u && round + 1u < chunk.eras {
                        neighbour_sets();
                    }
                }
            }
            store_edges();
            finish(&st);
        }
    }
}

// training.rs train(), after the eras: read patterns chunk.pattern up to
// chunk.pattern_end once more (all of them in one dispatch, or with LARGE
// one a dispatch).
@compute @workgroup_size(WG)
fn final_group(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if wid.x < chunk.n_lanes {
        setup(wid.x, local);
        var st = state[lane];
        load_edges();
        let last = min(chunk.pattern_end, desc[wid.x].n_patterns);
        for (var k = chunk.pattern; k < last; k++) {
            let rd = read_pattern(FINAL_READ_ERA, k);
            if tid == 0u {
                if rd.winner == target_output(k) {
                    st.recalled++;
                }
                for (var o = 0u; o < d.n_out; o++) {
                    currents[d.currents_off + k * d.n_out + o] = out_cur[o];
                }
                st.winner = rd.winner;
            }
        }
        finish(&st);
    }
}

// Tests only (Gpu::probe, src/backend/gpu/probe.rs): one read
// (chunk.pulse == PROBE_READ) or one pulse of pattern chunk.pattern after a
// mistake won by state.winner, in era state.eras_run; node voltages, output
// currents and resistances go to their slots (common.wgsl at_v, at_cur,
// at_r). The iterative path's probes run its steps instead.
@compute @workgroup_size(WG)
fn probe_group(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if wid.x < chunk.n_lanes {
        setup(wid.x, local);
        var st = state[lane];
        let w = broadcast(st.winner);
        load_edges();
        let k = chunk.pattern;
        if chunk.pulse == PROBE_READ {
            let rd = read_pattern(st.eras_run, k);
            if tid == 0u {
                st.winner = rd.winner;
                for (var o = 0u; o < d.n_out; o++) {
                    fs[at_cur(o)] = out_cur[o];
                }
            }
        } else if w != target_output(k) {
            let n_alive = pulse(chunk.pulse, k, w, st.eras_run, desc[wid.x].n_sub);
            add_updates(&st, n_alive * desc[wid.x].n_sub);
            bank_energy(&st);
        }
        if LARGE == 0u {
            for (var i = tid; i < n_nodes; i += WG) {
                fs[at_v(i)] = v[i];
            }
        }
        store_edges();
        finish(&st);
    }
}

// The iterative path's steps (LARGE), one dispatch each, so that a
// dispatch holds one solve (lavapipe's loop budget, and a brief dispatch
// on any GPU): per pattern a read, then for punish and for normalize a
// pulse start and n_sub substeps, as the schedule entry (chunk.pattern,
// chunk.pulse, chunk.substep) says; the era's end is era_group with no
// pattern, the final read final_group with one. What a pulse's substeps
// share survives in `state` (winner, moving), `us` (the node kinds) and
// `fs` (voltages).

// training.rs Trainer::read of pattern chunk.pattern, and its trace.
@compute @workgroup_size(WG)
fn read_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if wid.x < chunk.n_lanes {
        setup(wid.x, local);
        var st = state[lane];
        let k = chunk.pattern;
        if broadcast(st.status) == RUNNING && k < desc[wid.x].n_patterns {
            load_edges();
            let rd = read_pattern(st.eras_run, k);
            if tid == 0u {
                let correct = rd.winner == target_output(k);
                let at = d.trace_off + st.eras_run * d.n_patterns + k;
                trace[at] = TraceEntry(select(0u, 1u, correct), rd.power);
                st.winner = rd.winner;
                if !correct {
                    st.mistakes++;
                }
                for (var o = 0u; o < d.n_out; o++) {
                    fs[at_cur(o)] = out_cur[o];
                }
            }
            finish(&st);
        }
    }
}

// training.rs Trainer::pulse up to the substeps, after a mistake: the
// boundary of punish or normalize (chunk.pulse) and the update count.
@compute @workgroup_size(WG)
fn pulse_begin_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if wid.x < chunk.n_lanes {
        setup(wid.x, local);
        var st = state[lane];
        let k = chunk.pattern;
        let w = broadcast(st.winner);
        if broadcast(st.status) == RUNNING {
            var moving = 0u;
            if k < desc[wid.x].n_patterns && w != target_output(k) {
                load_edges();
                set_pulse_phase(chunk.pulse, k, w);
                if tid == 0u {
                    atomicStore(&alive_count, 0u);
                }
                prepare(NONE);
                var mine = 0u;
                for (var j = 0u; j < E_PER; j++) {
                    let e = tid + j * WG;
                    if e < n_edges && is_alive(e) {
                        mine++;
                    }
                }
                if mine > 0u {
                    atomicAdd(&alive_count, mine);
                }
                workgroupBarrier();
                if tid == 0u {
                    add_updates(&st, atomicLoad(&alive_count) * d.n_sub);
                }
                moving = 1u;
            }
            if tid == 0u {
                st.moving = moving;
            }
            finish(&st);
        }
    }
}

// Substep chunk.substep of the pulse: solve, P dt, move every alive
// device; once a substep moves none, the rest of the pulse is accounted
// at once (as in pulse()) and its remaining substeps do nothing.
@compute @workgroup_size(WG)
fn pulse_substep_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if wid.x < chunk.n_lanes {
        setup(wid.x, local);
        var st = state[lane];
        let k = chunk.pattern;
        let sub = chunk.substep;
        let n_sub = desc[wid.x].n_sub;
        if broadcast(st.status) == RUNNING && broadcast(st.moving) == 1u && sub < n_sub {
            load_edges();
            set_pulse_phase(chunk.pulse, k, st.winner);
            if tid == 0u {
                atomicStore(&moved[0], 0u);
            }
            // The kinds and fixed voltages are the pulse start's.
            boundary_solves = sub;
            sums(false);
            solve(vec3<u32>(0u), true);
            let p = reduce(own_power());
            move_devices(d.dt, vec3<u32>(st.eras_run, 2u * k + chunk.pulse, sub), 0u);
            let flags = workgroupUniformLoad(&moved[0]);
            if tid == 0u {
                if flags != 0u {
                    st.energy_write += p * d.dt;
                } else {
                    st.energy_write += p * d.dt * f32(n_sub - sub);
                    st.moving = 0u;
                }
            }
            store_edges();
            finish(&st);
        }
    }
}
