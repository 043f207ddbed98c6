// What the kernel (shaders/train_group.wgsl, which src/backend/gpu puts
// after this file) shares with the Rust mirrors: the buffers and their
// structs, the instance's description and where its network lies in `net`,
// the counter hash of rng.rs, the boundary of each phase (phase.rs) and the
// threshold memristor's rate (device.rs).
//
// Memory (src/backend/gpu/buffers.rs builds it):
// - `chunk`: the chunk's layout and this dispatch's step, one entry of a
//   schedule bound at a dynamic offset;
// - `desc[lane]`: the instance's description and parameters (InstanceDesc);
// - `net`: topology and adjacency (shared by instances with the same
//   network) and each instance's task, at offsets given in its description;
// - `fs`, `us`: per-instance state (and the iterative path's vectors),
//   interleaved by lane: value `slot` of lane `lane` sits at
//   `slot * chunk.n_lanes + lane`;
// - `state[lane]`: what survives between dispatches (InstanceState);
// - `trace`, `currents`: results, at offsets given in the description;
// - `running[era]`: how many instances still train after that era.

struct InstanceDesc {
    seed_lo: u32,
    seed_hi: u32,
    n_in: u32,
    n_hidden: u32,
    n_out: u32,
    n_edges: u32,
    n_patterns: u32,
    // 32-bit words per pattern's active-input mask.
    mask_words: u32,
    // Into `net`: tail[M], head[M], negative[M], adj_start[N + 1],
    // adj_edge[2M], adj_other[2M], then the parity class (network.rs
    // Network::parity_class) as a set of ceil(N / 32) words.
    net_off: u32,
    // Into `net`: per pattern, its target then its active-input mask.
    task_off: u32,
    // Into `trace`: max_eras * n_patterns entries, era-major.
    trace_off: u32,
    // Into `currents`: n_patterns * n_out final read currents.
    currents_off: u32,
    n_sub: u32,
    max_eras: u32,
    // An edge eligible for pruning goes when its 24-bit uniform draw is
    // below this: ceil(p_prune * 2^24), exact for any f64 p_prune.
    prune_below: u32,
    pad0: u32,
    v_read: f32,
    v_punish: f32,
    v_norm: f32,
    // tau / n_sub, seconds.
    dt: f32,
    gmin: f32,
    alpha: f32,
    beta: f32,
    sigma_c2c: f32,
    f_prune: f32,
    sigma_read: f32,
    // The device law (device.rs Law): DEVICE_*, and for VTEAM its window
    // (WINDOW_*), 1 for an exponential R(x), its rates, exponents, the
    // ratio v_off / v_on and the window's exponent 2 p_window.
    device_model: u32,
    window: u32,
    exponential: u32,
    k_on: f32,
    k_off: f32,
    alpha_on: f32,
    alpha_off: f32,
    off_ratio: f32,
    window_power: f32,
    pad2: u32,
    pad3: u32,
    pad4: u32,
    pad5: u32,
    pad6: u32,
}

struct InstanceState {
    status: u32,
    eras_run: u32,
    converged_era: u32,
    pruned: u32,
    updates_lo: u32,
    updates_hi: u32,
    // Patterns recalled by the final read.
    recalled: u32,
    // Joule.
    energy_write: f32,
    // The winner of the last read.
    winner: u32,
    // Mistakes in the current era.
    mistakes: u32,
    // The node split of the current pulse (the roles are in `us`).
    n_dense: u32,
    n_eliminated: u32,
    // 1 while the current pulse still moves devices.
    moving: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// One dispatch's uniform (a dynamic offset into the chunk's schedule): the
// chunk's layout, and the step of the era loop this dispatch runs.
struct Chunk {
    n_lanes: u32,
    // Slot counts of the interleaved state: edges, nodes, the dense path's
    // bound on its dense system, and outputs, each the maximum over the
    // chunk's instances.
    m_max: u32,
    n_max: u32,
    d_max: u32,
    o_max: u32,
    // The first pattern of this dispatch (the pattern of an iterative-path
    // step).
    pattern: u32,
    // PULSE_PUNISH or PULSE_NORMALIZE, in pulse steps and probes; in
    // dense-path probes, PROBE_READ too.
    pulse: u32,
    // The Euler substep, in pulse_substep_step (iterative path).
    substep: u32,
    // Always 2: the trip count of the loop-limit canary.
    two: u32,
    // One past the last pattern of this dispatch, and 1 when this dispatch
    // ends the era.
    pattern_end: u32,
    end_era: u32,
    // Eras this dispatch runs (whole eras if more than 1).
    eras: u32,
}

struct TraceEntry {
    correct: u32,
    // Watt.
    read_power: f32,
}

@group(0) @binding(0) var<uniform> chunk: Chunk;
@group(0) @binding(1) var<storage, read> desc: array<InstanceDesc>;
@group(0) @binding(2) var<storage, read> net: array<u32>;
@group(0) @binding(3) var<storage, read_write> fs: array<f32>;
@group(0) @binding(4) var<storage, read_write> us: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: array<InstanceState>;
@group(0) @binding(6) var<storage, read_write> trace: array<TraceEntry>;
@group(0) @binding(7) var<storage, read_write> currents: array<f32>;
// running[era]: instances still training after that era.
@group(0) @binding(8) var<storage, read_write> running: array<atomic<u32>>;

const RUNNING: u32 = 0u;
const DONE: u32 = 1u;
// The dense system outgrew its scratch: a bug, reported by the host.
const FAILED: u32 = 2u;
// The driver cut a loop short (lavapipe ends every loop of an invocation
// after 65535 iterations in all): reported by the host.
const LOOP_LIMIT: u32 = 3u;
const NO_ERA: u32 = 0xffffffffu;

// Node roles (circuit.rs NodeRole).
const FIXED: u32 = 0u;
const ISOLATED: u32 = 1u;
const ELIMINATED: u32 = 2u;
const DENSE: u32 = 3u;

// Protocol phases (phase.rs).
const READ: u32 = 0u;
const PUNISH: u32 = 1u;
const NORMALIZE: u32 = 2u;

// Pulse ids in the c2c noise counter (training.rs Pulse).
const PULSE_PUNISH: u32 = 0u;
const PULSE_NORMALIZE: u32 = 1u;
// A read, in a workgroup-layout probe's `pulse`.
const PROBE_READ: u32 = 2u;

// rng.rs purposes.
const PURPOSE_C2C_A: u32 = 0x63326361u;
const PURPOSE_C2C_B: u32 = 0x63326362u;
const PURPOSE_PRUNE: u32 = 0x7072756eu;

// real.rs: f32 TIE_REL.
const TIE_REL: f32 = 4e-6;

var<private> lane: u32;
var<private> d: InstanceDesc;
var<private> n_nodes: u32;
var<private> n_edges: u32;
var<private> tail_at: u32;
var<private> head_at: u32;
var<private> negative_at: u32;
var<private> start_at: u32;
var<private> edge_at: u32;
var<private> other_at: u32;
var<private> class_at: u32;
// The counter hash after seed and purpose, which every draw shares.
var<private> h_c2c_a: u32;
var<private> h_c2c_b: u32;
var<private> h_prune: u32;

// The boundary of the current phase.
var<private> phase: u32;
var<private> phase_pattern: u32;
var<private> phase_winner: u32;

// The dense system outgrew its scratch (reported as FAILED).
var<private> failed: bool;

// Read the description of instance `index`: where its network lies in
// `net`, and the hash prefixes of its draws.
fn describe(index: u32) {
    lane = index;
    d = desc[index];
    n_nodes = d.n_in + d.n_hidden + d.n_out;
    n_edges = d.n_edges;
    tail_at = d.net_off;
    head_at = tail_at + n_edges;
    negative_at = head_at + n_edges;
    start_at = negative_at + n_edges;
    edge_at = start_at + n_nodes + 1u;
    other_at = edge_at + 2u * n_edges;
    class_at = other_at + 2u * n_edges;
    h_c2c_a = hash_prefix(PURPOSE_C2C_A);
    h_c2c_b = hash_prefix(PURPOSE_C2C_B);
    h_prune = hash_prefix(PURPOSE_PRUNE);
    failed = false;
}

// Interleaved slots of the persistent state: f32 ron, roff, vt, r, g (per
// edge), then v (per node) and currents (per output); u32 alive (per
// edge).
fn at(slot: u32) -> u32 {
    return slot * chunk.n_lanes + lane;
}
fn at_ron(e: u32) -> u32 { return at(e); }
fn at_roff(e: u32) -> u32 { return at(chunk.m_max + e); }
fn at_vt(e: u32) -> u32 { return at(2u * chunk.m_max + e); }
fn at_r(e: u32) -> u32 { return at(3u * chunk.m_max + e); }
fn at_g(e: u32) -> u32 { return at(4u * chunk.m_max + e); }
fn at_v(i: u32) -> u32 { return at(5u * chunk.m_max + i); }
fn at_cur(o: u32) -> u32 { return at(5u * chunk.m_max + chunk.n_max + o); }
fn at_alive(e: u32) -> u32 { return at(e); }

fn tail(e: u32) -> u32 { return net[tail_at + e]; }

fn head(e: u32) -> u32 { return net[head_at + e]; }

fn adj_start(i: u32) -> u32 { return net[start_at + i]; }

fn adj_end(i: u32) -> u32 { return net[start_at + i + 1u]; }

fn adj_edge(k: u32) -> u32 { return net[edge_at + k]; }

fn adj_other(k: u32) -> u32 { return net[other_at + k]; }

// Word w of the parity class's node set.
fn class_word(w: u32) -> u32 { return net[class_at + w]; }

fn output_node(o: u32) -> u32 { return d.n_in + d.n_hidden + o; }

fn target_output(k: u32) -> u32 {
    return net[d.task_off + k * (1u + d.mask_words)];
}

fn input_active(k: u32, i: u32) -> bool {
    let word = net[d.task_off + k * (1u + d.mask_words) + 1u + i / 32u];
    return ((word >> (i % 32u)) & 1u) != 0u;
}

// rng.rs: mix32 and CounterRng::bits, with the seed and purpose words
// hashed once per dispatch.
fn mix32(x0: u32) -> u32 {
    var x = x0;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    return x ^ (x >> 16u);
}

fn hash_prefix(purpose: u32) -> u32 {
    var h = mix32(d.seed_lo ^ 0x9e3779b9u);
    h = mix32((h + d.seed_hi) ^ 0x85ebca6bu);
    return mix32((h + purpose) ^ 0xc2b2ae35u);
}

fn bits(prefix: u32, w: vec4<u32>) -> u32 {
    var h = prefix;
    for (var i = 0u; i < 4u; i++) {
        h = mix32((h + w[i]) ^ 0x27d4eb2fu);
    }
    return h;
}

// CounterRng::normal in f32: Box-Muller from two 24-bit uniforms.
fn normal(w: vec4<u32>) -> f32 {
    let u1 = f32((bits(h_c2c_a, w) >> 8u) + 1u) * (1.0 / 16777216.0);
    let u2 = f32(bits(h_c2c_b, w) >> 8u) * (1.0 / 16777216.0);
    return sqrt(-2.0 * log(u1)) * cos(6.2831855 * u2);
}

// phase.rs: whether the current phase fixes node i, and at what voltage.
fn is_fixed(i: u32) -> bool {
    var fixed = true;
    if i < d.n_in {
        if phase == PUNISH {
            fixed = input_active(phase_pattern, i);
        }
    } else if i < d.n_in + d.n_hidden {
        fixed = false;
    } else if phase == PUNISH {
        fixed = i == output_node(phase_winner);
    }
    return fixed;
}

fn fixed_volts(i: u32) -> f32 {
    var volts = 0.0;
    if i < d.n_in {
        if phase == READ {
            if input_active(phase_pattern, i) {
                volts = d.v_read;
            }
        } else if phase == PUNISH {
            volts = -d.v_punish;
        } else {
            volts = d.v_norm;
        }
    }
    return volts;
}

// device.rs resistance_rate, ohm/s; a stuck device (vt < 0) does not
// move.
fn resistance_rate(v: f32, vt: f32) -> f32 {
    var rate: f32;
    if vt < 0.0 {
        rate = 0.0;
    } else if v > vt {
        rate = -d.beta * (v - vt);
    } else if v < -vt {
        rate = -d.beta * (v + vt);
    } else {
        rate = -d.alpha * v;
    }
    return rate;
}

const DEVICE_PERSHIN_DI_VENTRA: u32 = 0u;
const DEVICE_VTEAM: u32 = 1u;
const WINDOW_NONE: u32 = 0u;
const WINDOW_JOGLEKAR: u32 = 1u;
const WINDOW_BIOLEK: u32 = 2u;

// device.rs power: base^e for base >= 0, exact for e = 1 and e = 2.
fn vteam_power(base: f32, e: f32) -> f32 {
    var p: f32;
    if e == 1.0 {
        p = base;
    } else if e == 2.0 {
        p = base * base;
    } else if base == 0.0 {
        p = 0.0;
    } else {
        p = exp(e * log(base));
    }
    return p;
}

// device.rs Vteam::x_of_r: the state x of a device at resistance r.
fn vteam_x_of_r(r: f32, ron: f32, roff: f32) -> f32 {
    if d.exponential != 0u {
        return log(r / ron) / log(roff / ron);
    }
    return (r - ron) / (roff - ron);
}

// device.rs Vteam::r_of_x: R(x).
fn vteam_r_of_x(x: f32, ron: f32, roff: f32) -> f32 {
    if d.exponential != 0u {
        return ron * exp(x * log(roff / ron));
    }
    return ron + (roff - ron) * x;
}

// device.rs Vteam::window: f(x), potentiating or depressing.
fn vteam_window(x: f32, potentiating: bool) -> f32 {
    var f = 1.0;
    if d.window == WINDOW_JOGLEKAR {
        f = 1.0 - vteam_power(abs(2.0 * x - 1.0), d.window_power);
    } else if d.window == WINDOW_BIOLEK {
        f = 1.0 - vteam_power(select(1.0 - x, x, potentiating), d.window_power);
    }
    return f;
}

// device.rs Vteam::rate: dx/dt (1/s) at v, vt being the edge's v_on
// (negative: stuck).
fn vteam_rate(v: f32, vt: f32, r: f32, ron: f32, roff: f32) -> f32 {
    let v_on = vt;
    let v_off = vt * d.off_ratio;
    let over_on = v / v_on - 1.0;
    let over_off = -v / v_off - 1.0;
    let on = vt > 0.0 && over_on > 0.0;
    let off = vt > 0.0 && over_off > 0.0;
    var rate = 0.0;
    if on {
        rate = -d.k_on * vteam_power(over_on, d.alpha_on) * vteam_window(vteam_x_of_r(r, ron, roff), true);
    } else if off {
        rate = d.k_off * vteam_power(over_off, d.alpha_off) * vteam_window(vteam_x_of_r(r, ron, roff), false);
    }
    return rate;
}

// device.rs Vteam::step: one Euler step in x, clipped to [0, 1]; r itself
// when the rate is zero.
fn vteam_step(r: f32, rate: f32, dt: f32, noise: f32, ron: f32, roff: f32) -> f32 {
    if rate == 0.0 {
        return r;
    }
    let x = clamp(vteam_x_of_r(r, ron, roff) + dt * rate * noise, 0.0, 1.0);
    return vteam_r_of_x(x, ron, roff);
}

// device.rs DeviceLaw::rate of the instance's law (Law): what every kernel
// calls.
fn device_rate(v: f32, vt: f32, r: f32, ron: f32, roff: f32) -> f32 {
    if d.device_model == DEVICE_VTEAM {
        return vteam_rate(v, vt, r, ron, roff);
    }
    return resistance_rate(v, vt);
}

// device.rs DeviceLaw::step of the instance's law.
fn device_step(r: f32, rate: f32, dt: f32, noise: f32, ron: f32, roff: f32) -> f32 {
    if d.device_model == DEVICE_VTEAM {
        return vteam_step(r, rate, dt, noise, ron, roff);
    }
    return euler_step(r, rate, dt, noise, ron, roff);
}

// device.rs c2c_factor: the mean-one cycle-to-cycle factor
// exp(sigma z - sigma^2 / 2).
fn c2c_factor(sigma: f32, z: f32) -> f32 {
    return exp(sigma * z - 0.5 * sigma * sigma);
}

// device.rs euler_step: one explicit-Euler step of one device, clipped to
// [ron, roff].
fn euler_step(r: f32, rate: f32, dt: f32, noise: f32, ron: f32, roff: f32) -> f32 {
    var next = r + dt * rate * noise;
    if next < ron {
        next = ron;
    }
    if next > roff {
        next = roff;
    }
    return next;
}

// training.rs prune_threshold: the resistance at and above which a device
// may be pruned.
fn prune_threshold(ron: f32, roff: f32) -> f32 {
    return ron + d.f_prune * (roff - ron);
}

// training.rs Trainer::prune: whether pruning at the end of `era` removes
// edge e at resistance r (the threshold, then the counter-hash draw).
fn prunes(era: u32, e: u32, r: f32, ron: f32, roff: f32) -> bool {
    return r >= prune_threshold(ron, roff)
        && (bits(h_prune, vec4<u32>(era, 0u, 0u, e)) >> 8u) < d.prune_below;
}

// training.rs FINAL_READ_ERA and READ_WORD: the era word of the final
// read's noise draws, and the pulse word of every read-noise draw.
const FINAL_READ_ERA: u32 = 0xffffffffu;
const READ_WORD: u32 = 0xffffffffu;

// training.rs read_noise: the factor read noise multiplies output o's
// current by at the read of pattern k in `era` (1 without read noise).
fn read_noise(era: u32, k: u32, o: u32) -> f32 {
    var factor = 1.0;
    if d.sigma_read > 0.0 {
        factor = 1.0 + d.sigma_read * normal(vec4<u32>(era, READ_WORD, k, o));
    }
    return factor;
}

// phase.rs tie_band: currents at or above it tie with the largest.
fn tie_band(largest: f32) -> f32 {
    return largest - TIE_REL * abs(largest);
}

// A loop of two iterations (the count comes from the uniform, so no
// compiler folds it): once llvmpipe's loop budget is spent, every loop runs
// its body once, and this one counts 1.
fn loops_intact() -> bool {
    var n = 0u;
    for (var i = 0u; i < chunk.two; i++) {
        n++;
    }
    return n == 2u;
}

// training.rs train(), after era `era`'s pruning removed `pruned` edges:
// stop on convergence (no mistake in the era) or at max_eras, else count the
// instance as still training.
fn close_era(st: ptr<function, InstanceState>, era: u32, pruned: u32) {
    (*st).pruned += pruned;
    (*st).eras_run = era + 1u;
    if (*st).mistakes == 0u {
        (*st).converged_era = era;
        (*st).status = DONE;
    } else if era + 1u >= d.max_eras {
        (*st).status = DONE;
    } else {
        atomicAdd(&running[era], 1u);
    }
    (*st).mistakes = 0u;
}

struct ReadResult {
    // The same in every invocation.
    winner: u32,
    // Watt; in the workgroup layout, in invocation 0.
    power: f32,
}
