// Exact probes of the pointwise rules (src/backend/gpu/rules.rs): after
// common.wgsl, one invocation per input row evaluates every rule both
// kernels share, with desc[0]'s parameters, and writes the results' bits,
// so tests/gpu.rs can set them beside their Rust mirrors (the mirror table
// of docs/numerics.md).

struct RuleInput {
    // v, vt, r, ron, roff, dt, noise, s (a state x or a sigma in [0, 1]).
    x: array<f32, 8>,
    // Counter words: (era, edge or pulse, pattern, output).
    w: vec4<u32>,
}

@group(0) @binding(9) var<storage, read> rule_in: array<RuleInput>;
@group(0) @binding(10) var<storage, read_write> rule_out: array<u32>;

// Results per row: rules.rs RULE_NAMES.
const RULE_OUTPUTS: u32 = 17u;

@compute @workgroup_size(64)
fn probe_rules(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= arrayLength(&rule_in) {
        return;
    }
    d = desc[0];
    h_c2c_a = hash_prefix(PURPOSE_C2C_A);
    h_c2c_b = hash_prefix(PURPOSE_C2C_B);
    h_prune = hash_prefix(PURPOSE_PRUNE);
    let x = rule_in[i].x;
    let w = rule_in[i].w;
    let v = x[0];
    let vt = x[1];
    let r = x[2];
    let ron = x[3];
    let roff = x[4];
    let dt = x[5];
    let noise = x[6];
    let s = x[7];
    let at = i * RULE_OUTPUTS;
    let rate = resistance_rate(v, vt);
    rule_out[at] = bitcast<u32>(rate);
    rule_out[at + 1u] = bitcast<u32>(euler_step(r, rate, dt, noise, ron, roff));
    let law_rate = device_rate(v, vt, r, ron, roff);
    rule_out[at + 2u] = bitcast<u32>(law_rate);
    rule_out[at + 3u] = bitcast<u32>(device_step(r, law_rate, dt, noise, ron, roff));
    rule_out[at + 4u] = bitcast<u32>(vteam_x_of_r(r, ron, roff));
    rule_out[at + 5u] = bitcast<u32>(vteam_r_of_x(s, ron, roff));
    rule_out[at + 6u] = bitcast<u32>(vteam_window(s, true));
    rule_out[at + 7u] = bitcast<u32>(vteam_window(s, false));
    rule_out[at + 8u] = bitcast<u32>(vteam_power(s, noise));
    rule_out[at + 9u] = mix32(w.x);
    rule_out[at + 10u] = bits(h_prune, w);
    let z = normal(w);
    rule_out[at + 11u] = bitcast<u32>(z);
    rule_out[at + 12u] = bitcast<u32>(c2c_factor(s, z));
    rule_out[at + 13u] = bitcast<u32>(prune_threshold(ron, roff));
    rule_out[at + 14u] = select(0u, 1u, prunes(w.x, w.y, r, ron, roff));
    rule_out[at + 15u] = bitcast<u32>(tie_band(v));
    rule_out[at + 16u] = bitcast<u32>(read_noise(w.x, w.y, w.z));
}
