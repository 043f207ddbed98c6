//! Single protocol steps on the GPU from given states, for the tests that
//! compare the shaders with the CPU kernel step by step (tests/gpu.rs).
//!
//! Not here: training (`Gpu::train_chunk`).

use std::sync::Arc;

use super::buffers::*;
use super::{check_status, Gpu};
use crate::instance::Instance;
use crate::params::Params;

/// A starting state for `Gpu::probe`: resistances (ohm) and alive mask.
pub struct ProbeCase<'a> {
    pub instance: &'a Instance,
    pub params: &'a Params,
    pub r: Vec<f32>,
    pub alive: Vec<bool>,
}

/// One protocol step for `Gpu::probe`. Punish and normalize act as after
/// a mistake won by `winner`, or by the output after the target,
/// `(target + 1) % n_out`, if `None`. (A winner equal to the target is no
/// mistake: the step does nothing.)
#[derive(Clone, Copy, Debug)]
pub enum ProbeStep {
    Read {
        pattern: u32,
    },
    Punish {
        pattern: u32,
        winner: Option<u32>,
        era: u32,
    },
    Normalize {
        pattern: u32,
        winner: Option<u32>,
        era: u32,
    },
}

/// The state after a probe step.
#[derive(Clone, Debug)]
pub struct ProbeSnapshot {
    /// Node voltages (volt) of the step's last solve.
    pub v: Vec<f32>,
    /// Output currents (ampere) of a read.
    pub currents: Vec<f32>,
    /// The winner of a read.
    pub winner: u32,
    /// Resistances (ohm).
    pub r: Vec<f32>,
    /// Joule, accumulated over the probe's pulses.
    pub energy_write: f32,
}

impl Gpu {
    /// Tests only: run `steps` in turn from the given states, each with
    /// the kernel's own entry point, and snapshot voltages, currents and
    /// resistances after each. Every case must fit one chunk, and every
    /// step's pattern must exist in every case.
    #[doc(hidden)]
    pub fn probe(&self, cases: &[ProbeCase], steps: &[ProbeStep]) -> Vec<Vec<ProbeSnapshot>> {
        let owned: Vec<(Instance, Arc<Params>)> = cases
            .iter()
            .map(|c| (c.instance.clone(), Arc::new(c.params.clone())))
            .collect();
        let chunk: Vec<&(Instance, Arc<Params>)> = owned.iter().collect();
        assert_eq!(self.plan(&chunk).len(), 1, "probe cases must fit one chunk");
        let initial: Vec<(&[f32], &[bool])> = cases
            .iter()
            .map(|c| (c.r.as_slice(), c.alive.as_slice()))
            .collect();
        let mut flat = self.flatten(&chunk, Some(&initial));
        let g = self.chunk_steps(&chunk, &mut flat, None);
        let lanes = cases.len();
        let mut guard = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let b = self.buffers(&mut guard, flat.sizes);
        self.upload(b, &flat);
        let mut encoder = self.encoder();
        self.clear_scratch(&mut encoder, b, &flat);
        self.queue.submit(Some(encoder.finish()));
        let u = flat.uniform;
        let (m, n, l) = (u.m_max as u64, u.n_max as u64, lanes as u64);
        let mut states = flat.states.clone();
        let mut out = vec![Vec::new(); lanes];
        for step in steps {
            let (pattern, era, winner, pulse) = match *step {
                ProbeStep::Read { pattern } => (pattern, 0, None, None),
                ProbeStep::Punish {
                    pattern,
                    winner,
                    era,
                } => (pattern, era, Some(winner), Some(PULSE_PUNISH)),
                ProbeStep::Normalize {
                    pattern,
                    winner,
                    era,
                } => (pattern, era, Some(winner), Some(PULSE_NORMALIZE)),
            };
            for (st, case) in states.iter_mut().zip(cases) {
                let target = case.instance.task.target[pattern as usize];
                st.status = STATUS_RUNNING;
                st.eras_run = era;
                if let Some(w) = winner {
                    st.winner = w.unwrap_or(((target + 1) % case.instance.network.n_out) as u32);
                }
            }
            self.queue
                .write_buffer(&b.state, 0, bytemuck::cast_slice(&states));
            let k = pattern as usize;
            let mut dispatches = Vec::new();
            match (&g.probe, &g.steps, pulse) {
                (Some(probe), ..) => {
                    dispatches.push((probe, flat.group_probe(k, pulse.unwrap_or(PROBE_READ))))
                }
                (None, Some(large), None) => {
                    dispatches.push((&large.read, flat.entry(k, PULSE_PUNISH, 0)))
                }
                (None, Some(large), Some(pulse)) => {
                    Gpu::pulse_steps(large, &flat, k, pulse, &mut dispatches)
                }
                (None, None, _) => unreachable!("a shape has a probe or steps"),
            }
            let mut encoder = self.encoder();
            self.dispatch(&mut encoder, b, &dispatches, lanes as u32);
            // States; then fs from r to the currents: r, g, v, currents.
            let state_bytes = l * size_of::<InstanceState>() as u64;
            let fs_from = 4 * 3 * m * l;
            let fs_size = 4 * (2 * m + n + u.o_max as u64) * l;
            encoder.copy_buffer_to_buffer(&b.state, 0, &b.staging, 0, state_bytes);
            encoder.copy_buffer_to_buffer(&b.fs, fs_from, &b.staging, state_bytes, fs_size);
            let bytes = self.read_back(&b.staging, encoder, state_bytes + fs_size);
            states.copy_from_slice(bytemuck::cast_slice(&bytes[..state_bytes as usize]));
            let fs: &[f32] = bytemuck::cast_slice(&bytes[state_bytes as usize..]);
            // Slot s (counted from r) of lane `lane`.
            let at = |slot: u64, lane: usize| fs[(slot * l) as usize + lane];
            for (lane, case) in cases.iter().enumerate() {
                check_status(&self.adapter, states[lane].status, case.instance.seed);
                let net = &case.instance.network;
                let v0 = 2 * m;
                let cur0 = 2 * m + n;
                out[lane].push(ProbeSnapshot {
                    v: (0..net.n_nodes() as u64)
                        .map(|i| at(v0 + i, lane))
                        .collect(),
                    currents: (0..net.n_out as u64).map(|o| at(cur0 + o, lane)).collect(),
                    winner: states[lane].winner,
                    r: (0..net.n_edges() as u64).map(|e| at(e, lane)).collect(),
                    energy_write: states[lane].energy_write,
                });
            }
        }
        out
    }
}
