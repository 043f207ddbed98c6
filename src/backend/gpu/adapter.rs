//! Which adapters the GPU backend counts and which one it picks: what
//! `memsweep devices` lists and `--backend auto` and `gpu` choose.
//!
//! Not here: opening the device (`Gpu::new`).

/// Which adapters count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Any adapter that runs compute shaders, software ones (lavapipe)
    /// included, hardware first: `--backend gpu`.
    Any,
    /// Hardware adapters only: `--backend auto`.
    Hardware,
}

/// An adapter as `memsweep devices` lists it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// Runs compute shaders with the storage buffers the kernel binds.
    pub suitable: bool,
    /// A GPU in hardware (discrete, integrated or virtual), not a CPU driver.
    pub hardware: bool,
}

impl AdapterSummary {
    /// `'name' (backend, type)`.
    pub fn describe(&self) -> String {
        format!("'{}' ({}, {})", self.name, self.backend, self.device_type)
    }
}

pub(super) fn summary(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let compute = adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
    let storage = adapter.limits().max_storage_buffers_per_shader_stage >= 8;
    AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        suitable: compute && storage,
        hardware: matches!(
            info.device_type,
            wgpu::DeviceType::DiscreteGpu
                | wgpu::DeviceType::IntegratedGpu
                | wgpu::DeviceType::VirtualGpu
        ),
    }
}

/// Preference among suitable adapters: discrete, integrated, virtual, other,
/// then software.
pub(super) fn rank(device_type: &str) -> u8 {
    match device_type {
        "DiscreteGpu" => 0,
        "IntegratedGpu" => 1,
        "VirtualGpu" => 2,
        "Other" => 3,
        _ => 4,
    }
}

/// Index of the adapter `selection` picks among `adapters`, if any.
pub fn pick(adapters: &[AdapterSummary], selection: Selection) -> Option<usize> {
    adapters
        .iter()
        .enumerate()
        .filter(|(_, a)| a.suitable && (selection == Selection::Any || a.hardware))
        .min_by_key(|(i, a)| (rank(&a.device_type), *i))
        .map(|(i, _)| i)
}

pub(super) fn new_instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

pub(super) fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// Every adapter wgpu sees, in its order.
pub fn adapters() -> Vec<AdapterSummary> {
    enumerate(&new_instance()).iter().map(summary).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_never_picks_a_software_adapter() {
        let a = |t: &str, hardware| AdapterSummary {
            name: t.into(),
            backend: "Vulkan".into(),
            device_type: t.into(),
            suitable: true,
            hardware,
        };
        let list = vec![
            a("Cpu", false),
            a("IntegratedGpu", true),
            a("DiscreteGpu", true),
        ];
        assert_eq!(pick(&list, Selection::Hardware), Some(2));
        assert_eq!(pick(&list, Selection::Any), Some(2));
        let only_sw = vec![a("Cpu", false)];
        assert_eq!(pick(&only_sw, Selection::Hardware), None);
        assert_eq!(pick(&only_sw, Selection::Any), Some(0));
    }
}
