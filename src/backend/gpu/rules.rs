//! Exact probes of the pointwise rules: `shaders/rules.wgsl` runs every
//! function of `shaders/common.wgsl` that both kernels share on rows of
//! given inputs and returns the results' bits, for comparison with their
//! Rust mirrors (`tests/gpu.rs`; the mirror table of `docs/numerics.md`).

use bytemuck::{Pod, Zeroable};

use super::{Gpu, InstanceDesc, COMMON};

/// The probe shader, after `COMMON`.
pub const RULES_SHADER: &str = include_str!("../../../shaders/rules.wgsl");

/// What the probe returns per row, in order: each an f32's bits except
/// `mix32`, `bits` and `prunes` (0 or 1).
pub const RULE_NAMES: [&str; 17] = [
    "resistance_rate",
    "euler_step",
    "device_rate",
    "device_step",
    "vteam_x_of_r",
    "vteam_r_of_x",
    "vteam_window (potentiating)",
    "vteam_window (depressing)",
    "vteam_power",
    "mix32",
    "bits",
    "normal",
    "c2c_factor",
    "prune_threshold",
    "prunes",
    "tie_band",
    "read_noise",
];

/// One row of inputs: `x` = (v, vt, r, ron, roff, dt, noise, s), `s` a
/// state or a sigma in [0, 1]; `w` the counter words.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RuleInput {
    pub x: [f32; 8],
    pub w: [u32; 4],
}

impl Gpu {
    /// Every shared rule on every row of `inputs`, with the parameters (and
    /// seed) of `desc`: `RULE_NAMES.len()` words per row.
    pub fn probe_rules(
        &self,
        desc: &InstanceDesc,
        inputs: &[RuleInput],
    ) -> Vec<[u32; RULE_NAMES.len()]> {
        use wgpu::util::DeviceExt;
        let device = &self.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("rules.wgsl"),
            source: wgpu::ShaderSource::Wgsl(format!("{COMMON}\n{RULES_SHADER}").into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("probe_rules"),
            layout: None,
            module: &module,
            entry_point: Some("probe_rules"),
            compilation_options: Default::default(),
            cache: None,
        });
        let storage = |label: &str, bytes: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            })
        };
        let descs = storage("rule desc", bytemuck::bytes_of(desc));
        let rows = storage("rule inputs", bytemuck::cast_slice(inputs));
        let size = (inputs.len() * RULE_NAMES.len() * 4).max(4) as u64;
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("rule outputs"),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("rule staging"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("rules"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: descs.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 9,
                    resource: rows.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 10,
                    resource: out.as_entire_binding(),
                },
            ],
        });
        let mut encoder = self.encoder();
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups((inputs.len() as u32).div_ceil(64), 1, 1);
        }
        encoder.copy_buffer_to_buffer(&out, 0, &staging, 0, size);
        let bytes = self.read_back(&staging, encoder, size);
        let words: &[u32] = bytemuck::cast_slice(&bytes);
        words
            .chunks_exact(RULE_NAMES.len())
            .take(inputs.len())
            .map(|row| row.try_into().expect("a row of RULE_NAMES.len() words"))
            .collect()
    }
}
