// Learning from mistakes (MODEL.md sections 2-7) for a chunk of independent
// instances, one invocation per instance, in f32.
//
// This file mirrors the CPU kernel step by step; read it beside
// - src/protocol/training.rs  (era loop, read, pulse, prune),
// - src/model/step.rs         (the device step, Edges::step_runs),
// - src/protocol/phase.rs     (boundaries of read/punish/normalize, winner),
// - src/model/circuit.rs      (prepare: node split; solve: Schur + Cholesky),
// - src/model/device.rs       (DeviceLaw::rate and step, c2c_factor),
// - src/rng.rs                (CounterRng: the counter hash).
// Loops run in the same order as there, so both accumulate in the same order:
// node sums edge by edge and updated as devices move, the lower triangle of
// the Schur complement from sorted links, a right-looking Cholesky
// factorisation. The era loop is cut into steps, one dispatch each (see
// read_step at the end).
//
// common.wgsl (which src/backend/gpu puts before this file) holds the
// buffers, the description of an instance, the draws and the phase
// boundaries. Here the
// whole state and scratch of an instance lives in `fs` and `us`,
// interleaved by lane, so that the invocations of a subgroup, stepping
// through equal-sized networks in lockstep, touch consecutive words.

// The split of the last prepare().
var<private> n_dense: u32;
var<private> n_eliminated: u32;

// Accumulators of the current dispatch.
var<private> energy_write: f32;
var<private> updates_lo: u32;
var<private> updates_hi: u32;

// Interleaved scratch (common.wgsl has the persistent slots). f32: after
// ron, roff, vt, r, g (per edge) and v (per node), conductance and inject
// sums, rhs (per node); currents (per output); schur (d_max^2).
fn at_conductance(i: u32) -> u32 { return at(5u * chunk.m_max + chunk.n_max + i); }
fn at_inject(i: u32) -> u32 { return at(5u * chunk.m_max + 2u * chunk.n_max + i); }
fn at_rhs(a: u32) -> u32 { return at(5u * chunk.m_max + 3u * chunk.n_max + a); }
fn at_schur(a: u32, b: u32) -> u32 {
    return at(5u * chunk.m_max + 4u * chunk.n_max + chunk.o_max + a * n_dense + b);
}
// u32 slots: alive (per edge); role, pos, dense, eliminated, order,
// free_degree, stack, link_start (per node, and one); link_pos, link_edge
// (two per edge).
fn at_role(i: u32) -> u32 { return at(chunk.m_max + i); }
fn at_pos(i: u32) -> u32 { return at(chunk.m_max + chunk.n_max + i); }
fn at_dense(a: u32) -> u32 { return at(chunk.m_max + 2u * chunk.n_max + a); }
fn at_eliminated(c: u32) -> u32 { return at(chunk.m_max + 3u * chunk.n_max + c); }
fn at_order(c: u32) -> u32 { return at(chunk.m_max + 4u * chunk.n_max + c); }
fn at_free_degree(i: u32) -> u32 { return at(chunk.m_max + 5u * chunk.n_max + i); }
fn at_stack(c: u32) -> u32 { return at(chunk.m_max + 6u * chunk.n_max + c); }
// The links of the c-th eliminated node to the dense system are entries
// link_start(c)..link_start(c + 1) of link_pos and link_edge.
fn at_link_start(c: u32) -> u32 { return at(chunk.m_max + 7u * chunk.n_max + c); }
fn at_link_pos(l: u32) -> u32 { return at(chunk.m_max + 8u * chunk.n_max + 1u + l); }
fn at_link_edge(l: u32) -> u32 {
    return at(3u * chunk.m_max + 8u * chunk.n_max + 1u + l);
}

fn is_alive(e: u32) -> bool { return us[at_alive(e)] != 0u; }
fn role(i: u32) -> u32 { return us[at_role(i)]; }

// Load the description of this invocation's instance; false past the chunk.
fn begin(index: u32) -> bool {
    let inside = index < chunk.n_lanes;
    if inside {
        load(index);
    }
    return inside;
}

fn load(index: u32) {
    describe(index);
    let st = state[index];
    energy_write = st.energy_write;
    updates_lo = st.updates_lo;
    updates_hi = st.updates_hi;
}

// circuit.rs Solver::prepare: classify the nodes for the current boundary.
fn prepare() {
    let n = n_nodes;
    var top = 0u;
    for (var i = 0u; i < n; i++) {
        if is_fixed(i) {
            us[at_role(i)] = FIXED;
            us[at_stack(top)] = i;
            top++;
        } else {
            us[at_role(i)] = ISOLATED;
        }
    }
    while top > 0u {
        top--;
        let i = us[at_stack(top)];
        for (var k = adj_start(i); k < adj_end(i); k++) {
            let j = adj_other(k);
            if is_alive(adj_edge(k)) && role(j) == ISOLATED {
                us[at_role(j)] = DENSE;
                us[at_stack(top)] = j;
                top++;
            }
        }
    }
    // Greedy independent set, fewest free neighbours first.
    var n_order = 0u;
    for (var i = 0u; i < n; i++) {
        if role(i) == DENSE {
            us[at_order(n_order)] = i;
            n_order++;
        }
    }
    for (var c = 0u; c < n_order; c++) {
        let i = us[at_order(c)];
        var degree = 0u;
        for (var k = adj_start(i); k < adj_end(i); k++) {
            if is_alive(adj_edge(k)) && role(adj_other(k)) != FIXED {
                degree++;
            }
        }
        us[at_free_degree(i)] = degree;
    }
    // Sort by (free degree, node): a stable insertion sort by degree of a
    // list already in node order.
    for (var c = 1u; c < n_order; c++) {
        let i = us[at_order(c)];
        let key = us[at_free_degree(i)];
        var j = c;
        while j > 0u && us[at_free_degree(us[at_order(j - 1u)])] > key {
            us[at_order(j)] = us[at_order(j - 1u)];
            j--;
        }
        us[at_order(j)] = i;
    }
    n_dense = 0u;
    n_eliminated = 0u;
    for (var c = 0u; c < n_order; c++) {
        let i = us[at_order(c)];
        var next_to_eliminated = false;
        for (var k = adj_start(i); k < adj_end(i); k++) {
            if is_alive(adj_edge(k)) && role(adj_other(k)) == ELIMINATED {
                next_to_eliminated = true;
            }
        }
        if next_to_eliminated {
            us[at_pos(i)] = n_dense;
            us[at_dense(n_dense)] = i;
            n_dense++;
        } else {
            us[at_role(i)] = ELIMINATED;
            us[at_eliminated(n_eliminated)] = i;
            n_eliminated++;
        }
    }
    if n_dense > chunk.d_max {
        failed = true;
        n_dense = 0u;
        n_eliminated = 0u;
    }
    // Each eliminated node's links to the dense system (dense index, edge),
    // alive edges only, sorted by dense index.
    var n_links = 0u;
    for (var c = 0u; c < n_eliminated; c++) {
        let i = us[at_eliminated(c)];
        us[at_link_start(c)] = n_links;
        let first = n_links;
        for (var k = adj_start(i); k < adj_end(i); k++) {
            let j = adj_other(k);
            if is_alive(adj_edge(k)) && role(j) == DENSE {
                us[at_link_pos(n_links)] = us[at_pos(j)];
                us[at_link_edge(n_links)] = adj_edge(k);
                n_links++;
            }
        }
        // Insertion sort by dense index (circuit.rs lists each eliminated
        // node's links in that order).
        for (var x = first + 1u; x < n_links; x++) {
            let p = us[at_link_pos(x)];
            let e = us[at_link_edge(x)];
            var y = x;
            while y > first && us[at_link_pos(y - 1u)] > p {
                us[at_link_pos(y)] = us[at_link_pos(y - 1u)];
                us[at_link_edge(y)] = us[at_link_edge(y - 1u)];
                y--;
            }
            us[at_link_pos(y)] = p;
            us[at_link_edge(y)] = e;
        }
    }
    us[at_link_start(n_eliminated)] = n_links;
}

// As circuit.rs NodeSums::fill does per edge: edge (u, w) of conductance g
// into the node sums of the current boundary.
fn add_edge(u: u32, w: u32, g: f32) {
    fs[at_conductance(u)] += g;
    fs[at_conductance(w)] += g;
    if is_fixed(w) {
        fs[at_inject(u)] += g * fixed_volts(w);
    }
    if is_fixed(u) {
        fs[at_inject(w)] += g * fixed_volts(u);
    }
}

// circuit.rs NodeSums::fill: the sums from every edge, in edge order.
fn fill_sums() {
    for (var i = 0u; i < n_nodes; i++) {
        fs[at_conductance(i)] = 0.0;
        fs[at_inject(i)] = 0.0;
    }
    for (var e = 0u; e < n_edges; e++) {
        add_edge(tail(e), head(e), fs[at_g(e)]);
    }
}

// circuit.rs Solver::solve_from_sums: node voltages for the conductances
// in `g` under the boundary of the last prepare(), from the node sums.
// Only the lower triangle of the Schur complement is kept, as there.
fn solve() {
    let n = n_nodes;
    for (var i = 0u; i < n; i++) {
        let r = role(i);
        if r == FIXED {
            fs[at_v(i)] = fixed_volts(i);
        } else if r == ISOLATED {
            fs[at_v(i)] = 0.0;
        }
    }
    let nd = n_dense;
    for (var a = 0u; a < nd; a++) {
        for (var b = 0u; b <= a; b++) {
            fs[at_schur(a, b)] = 0.0;
        }
    }
    for (var a = 0u; a < nd; a++) {
        let i = us[at_dense(a)];
        fs[at_schur(a, a)] = d.gmin + fs[at_conductance(i)];
        fs[at_rhs(a)] = fs[at_inject(i)];
        for (var k = adj_start(i); k < adj_end(i); k++) {
            let j = adj_other(k);
            if role(j) == DENSE && us[at_pos(j)] < a {
                let s = at_schur(a, us[at_pos(j)]);
                fs[s] -= fs[at_g(adj_edge(k))];
            }
        }
    }
    // Eliminating node i couples every pair of its dense neighbours: a
    // rank-one update of the lower triangle.
    for (var c = 0u; c < n_eliminated; c++) {
        let i = us[at_eliminated(c)];
        let first = us[at_link_start(c)];
        let last = us[at_link_start(c + 1u)];
        let inv_d = 1.0 / (d.gmin + fs[at_conductance(i)]);
        let share = fs[at_inject(i)] * inv_d;
        for (var la = first; la < last; la++) {
            let pa = us[at_link_pos(la)];
            let ga = fs[at_g(us[at_link_edge(la)])];
            fs[at_rhs(pa)] += ga * share;
            let ga_over_d = ga * inv_d;
            for (var lb = first; lb <= la; lb++) {
                let s = at_schur(pa, us[at_link_pos(lb)]);
                fs[s] -= ga_over_d * fs[at_g(us[at_link_edge(lb)])];
            }
        }
    }
    cholesky_solve(nd);
    for (var a = 0u; a < nd; a++) {
        fs[at_v(us[at_dense(a)])] = fs[at_rhs(a)];
    }
    for (var c = 0u; c < n_eliminated; c++) {
        let i = us[at_eliminated(c)];
        var total = fs[at_inject(i)];
        for (var l = us[at_link_start(c)]; l < us[at_link_start(c + 1u)]; l++) {
            let dense_node = us[at_dense(us[at_link_pos(l)])];
            total += fs[at_g(us[at_link_edge(l)])] * fs[at_v(dense_node)];
        }
        fs[at_v(i)] = total / (d.gmin + fs[at_conductance(i)]);
    }
}

// The Schur complement is symmetric positive definite; factorise its lower
// triangle in place as L L^T (with square roots, where the CPU's
// circuit.rs ldlt_factor takes none) and solve into rhs.
fn cholesky_solve(n: u32) {
    // Right-looking, as measures.rs cholesky_factor: after each pivot,
    // update the trailing rows with the pivot's column.
    for (var j = 0u; j < n; j++) {
        let dj = sqrt(fs[at_schur(j, j)]);
        fs[at_schur(j, j)] = dj;
        let inv = 1.0 / dj;
        for (var i = j + 1u; i < n; i++) {
            fs[at_schur(i, j)] *= inv;
        }
        for (var i = j + 1u; i < n; i++) {
            let l_ij = fs[at_schur(i, j)];
            for (var k = j + 1u; k <= i; k++) {
                fs[at_schur(i, k)] -= l_ij * fs[at_schur(k, j)];
            }
        }
    }
    for (var i = 0u; i < n; i++) {
        var s = fs[at_rhs(i)];
        for (var k = 0u; k < i; k++) {
            s -= fs[at_schur(i, k)] * fs[at_rhs(k)];
        }
        fs[at_rhs(i)] = s / fs[at_schur(i, i)];
    }
    for (var ii = n; ii > 0u; ii--) {
        let i = ii - 1u;
        var s = fs[at_rhs(i)];
        for (var k = i + 1u; k < n; k++) {
            s -= fs[at_schur(k, i)] * fs[at_rhs(k)];
        }
        fs[at_rhs(i)] = s / fs[at_schur(i, i)];
    }
}

// step.rs Edges::power: sum_e g_e (V_u - V_v)^2, watt.
fn power() -> f32 {
    var p = 0.0;
    for (var e = 0u; e < n_edges; e++) {
        let dv = fs[at_v(tail(e))] - fs[at_v(head(e))];
        p += fs[at_g(e)] * dv * dv;
    }
    return p;
}

// circuit.rs node_current: ampere from the network into node's ammeter.
fn node_current(node: u32) -> f32 {
    var i_out = 0.0;
    for (var k = adj_start(node); k < adj_end(node); k++) {
        i_out += fs[at_g(adj_edge(k))] * (fs[at_v(adj_other(k))] - fs[at_v(node)]);
    }
    return i_out;
}

// phase.rs winner: the largest current, ties within TIE_REL to the lowest
// index.
fn winner() -> u32 {
    var largest = fs[at_cur(0u)];
    for (var o = 1u; o < d.n_out; o++) {
        let c = fs[at_cur(o)];
        if c > largest {
            largest = c;
        }
    }
    let band = tie_band(largest);
    var w = d.n_out;
    for (var o = 0u; o < d.n_out; o++) {
        if w == d.n_out && fs[at_cur(o)] >= band {
            w = o;
        }
    }
    return select(w, 0u, w == d.n_out);
}

// training.rs Trainer::read: solve, output currents (with read noise),
// winner, read power.
fn read_pattern(era: u32, k: u32) -> ReadResult {
    phase = READ;
    phase_pattern = k;
    prepare();
    fill_sums();
    solve();
    for (var o = 0u; o < d.n_out; o++) {
        fs[at_cur(o)] = node_current(output_node(o)) * read_noise(era, k, o);
    }
    return ReadResult(winner(), power());
}

fn add_updates(x: u32) {
    let lo = updates_lo + x;
    if lo < x {
        updates_hi += 1u;
    }
    updates_lo = lo;
}

// step.rs Edges::step_runs (the power is power() here): Euler-update
// every alive device, keeping the node sums up to date; true
// if any resistance changed.
fn move_devices(dt: f32, counter: vec3<u32>) -> bool {
    let sigma = d.sigma_c2c;
    var changed = false;
    for (var e = 0u; e < n_edges; e++) {
        if is_alive(e) {
            var v = fs[at_v(tail(e))] - fs[at_v(head(e))];
            if net[negative_at + e] != 0u {
                v = -v;
            }
            let r_old = fs[at_r(e)];
            let ron = fs[at_ron(e)];
            let roff = fs[at_roff(e)];
            let rate = device_rate(v, fs[at_vt(e)], r_old, ron, roff);
            if rate != 0.0 {
                var noise = 1.0;
                if sigma > 0.0 {
                    noise = c2c_factor(sigma, normal(vec4<u32>(counter, e)));
                }
                let r = device_step(r_old, rate, dt, noise, ron, roff);
                if r != r_old {
                    let g = 1.0 / r;
                    add_edge(tail(e), head(e), g - fs[at_g(e)]);
                    fs[at_r(e)] = r;
                    fs[at_g(e)] = g;
                    changed = true;
                }
            }
        }
    }
    return changed;
}

// training.rs Trainer::prune: stochastic pruning at the end of `era`.
fn prune(era: u32) -> u32 {
    var removed = 0u;
    for (var e = 0u; e < n_edges && d.prune_below != 0u; e++) {
        if is_alive(e) {
            if prunes(era, e, fs[at_r(e)], fs[at_ron(e)], fs[at_roff(e)]) {
                us[at_alive(e)] = 0u;
                fs[at_g(e)] = 0.0;
                removed++;
            }
        }
    }
    return removed;
}

// The era loop of training.rs train(), one step per dispatch. For each
// pattern k: read_step; pulse_begin and n_sub pulse_substeps for punish;
// the same for normalize. After the last pattern, end_era. All instances of
// a chunk take the same step together (those with fewer patterns or
// substeps than the chunk's largest sit the rest out). Short dispatches keep
// every one brief on a GPU, and every invocation under llvmpipe's budget of
// loop iterations (see LOOP_LIMIT).
//
// Entry points and functions here have a single exit and no break or
// continue inside loops: plain structured control flow, which every driver
// compiles alike.

// Era loop body, first part: read pattern k and record the trace.
@compute @workgroup_size(64)
fn read_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    if begin(gid.x) {
        var st = state[lane];
        let k = chunk.pattern;
        if st.status == RUNNING && k < d.n_patterns {
            let rd = read_pattern(st.eras_run, k);
            let correct = rd.winner == target_output(k);
            let at = d.trace_off + st.eras_run * d.n_patterns + k;
            trace[at] = TraceEntry(select(0u, 1u, correct), rd.power);
            st.winner = rd.winner;
            if !correct {
                st.mistakes++;
            }
            finish_step(&st);
            state[lane] = st;
        }
    }
}

// Second part, after a mistake: training.rs Trainer::pulse up to the
// substeps, for punish (which grounds the wrong winner) or normalize.
@compute @workgroup_size(64)
fn pulse_begin(@builtin(global_invocation_id) gid: vec3<u32>) {
    if begin(gid.x) {
        var st = state[lane];
        let k = chunk.pattern;
        if st.status == RUNNING {
            st.moving = 0u;
            if k < d.n_patterns && st.winner != target_output(k) {
                set_pulse_phase(k, st.winner);
                prepare();
                fill_sums();
                var n_alive = 0u;
                for (var e = 0u; e < n_edges; e++) {
                    if is_alive(e) {
                        n_alive++;
                    }
                }
                add_updates(n_alive * d.n_sub);
                st.n_dense = n_dense;
                st.n_eliminated = n_eliminated;
                st.moving = 1u;
            }
            finish_step(&st);
            state[lane] = st;
        }
    }
}

// One Euler substep of the pulse: solve, accumulate P dt, move every alive
// device. Once a substep moves no device, the rest of the pulse is
// accounted at once (training.rs: exact, not an approximation) and the
// remaining substeps do nothing.
@compute @workgroup_size(64)
fn pulse_substep(@builtin(global_invocation_id) gid: vec3<u32>) {
    if begin(gid.x) {
        var st = state[lane];
        let k = chunk.pattern;
        let sub = chunk.substep;
        if st.status == RUNNING && st.moving == 1u && sub < d.n_sub {
            set_pulse_phase(k, st.winner);
            n_dense = st.n_dense;
            n_eliminated = st.n_eliminated;
            let dt = d.dt;
            solve();
            let p = power();
            let counter = vec3<u32>(st.eras_run, 2u * k + chunk.pulse, sub);
            if move_devices(dt, counter) {
                energy_write += p * dt;
            } else {
                energy_write += p * dt * f32(d.n_sub - sub);
                st.moving = 0u;
            }
            finish_step(&st);
            state[lane] = st;
        }
    }
}

// phase.rs punish (active inputs at -v_punish, the wrong winner grounded)
// or normalize (inputs at +v_norm, outputs grounded), as this step says.
fn set_pulse_phase(k: u32, w: u32) {
    phase = select(NORMALIZE, PUNISH, chunk.pulse == PULSE_PUNISH);
    phase_pattern = k;
    phase_winner = w;
}

// After the era's patterns: prune if the era had a mistake, then stop on
// convergence or at max_eras (a converged instance stops unpruned).
@compute @workgroup_size(64)
fn end_era(@builtin(global_invocation_id) gid: vec3<u32>) {
    if begin(gid.x) {
        var st = state[lane];
        if st.status == RUNNING {
            let era = st.eras_run;
            var pruned = 0u;
            if st.mistakes > 0u {
                pruned = prune(era);
            }
            close_era(&st, era, pruned);
            finish_step(&st);
            state[lane] = st;
        }
    }
}

// training.rs train(), after the eras: read pattern k once more (every
// instance, whatever its status).
@compute @workgroup_size(64)
fn final_read_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    if begin(gid.x) {
        var st = state[lane];
        let k = chunk.pattern;
        if k < d.n_patterns {
            let rd = read_pattern(FINAL_READ_ERA, k);
            if rd.winner == target_output(k) {
                st.recalled++;
            }
            for (var o = 0u; o < d.n_out; o++) {
                currents[d.currents_off + k * d.n_out + o] = fs[at_cur(o)];
            }
            st.winner = rd.winner;
            finish_step(&st);
            state[lane] = st;
        }
    }
}

// Keep what this dispatch accumulated, and flag a step that went wrong.
fn finish_step(st: ptr<function, InstanceState>) {
    (*st).energy_write = energy_write;
    (*st).updates_lo = updates_lo;
    (*st).updates_hi = updates_hi;
    if failed {
        (*st).status = FAILED;
    }
    if !loops_intact() {
        (*st).status = LOOP_LIMIT;
    }
}

