//! The GPU runtime: adapter choice, device with the adapter's real limits, compute pipelines created at first use,
//! the kernel choice per device, a buffer pool, and batched dispatch.
//!
//! How a kernel runs, end to end:
//! 1. At start-up `Gpu::new` parses every shader file its caller hands it (the op registry, `ops::shaders()`) with
//!    naga (a parse error names the file), reflects each entry point (workgroup size, and the name and `@binding` of
//!    every global it uses) and creates the shader modules; each entry point's pipeline is created the first time it
//!    is dispatched (`pipeline`, timed: `pipeline_times`), so start-up takes well under a second on every adapter and
//!    a compiler that is slow on some kernel only pays for those it runs.
//! 2. A launcher in `src/ops/<op>.rs` calls `gpu.dispatch(entry, &params, &[("x", x.bind()), ...], groups)`: buffers
//!    by the names the WGSL declares (binding numbers live only in the WGSL). The `Params` struct is copied into a
//!    slot of a uniform ring (binding 0).
//!
//! Kernel choice: the device holds one `KernelOptions` (family, vec4, a split limit for tests) that every launcher
//! asks, changed for a scope with `Gpu::scoped`, plus the entry points it does not run (`disable`: validation
//! failures, `SLOW_TO_BUILD`).
//! 3. Dispatches accumulate in one command encoder; `flush()` submits them. Nothing waits on the GPU until a value
//!    is read back (`read_f32`), so a whole training step is recorded without a CPU-GPU round trip.
//!
//! Dispatch grids: WebGPU caps each grid dimension at 65,535 workgroups, so `groups_1d` folds a long 1-D grid into
//! (x, y) and every shader rebuilds its linear index as `(wid.y * nwg.x + wid.x) * WG + lid.x`.
//!
//! Buffers: `alloc` hands out storage buffers from a pool keyed by byte size; a `GpuBuf` returns its buffer to the
//! pool when dropped. Reuse in program order is safe: the queue runs dispatches in order and wgpu inserts the
//! barriers. `buffers_created()` counts real allocations so a test can prove a steady-state step allocates nothing.
//!
//! Profiling (`set_profiling`, for `fluke bench`): the time of every dispatch, summed per entry point. Two ways,
//! reported by `profile_timing()`:
//! - "gpu" when the adapter has timestamp queries (`has_timestamps()`): each dispatch's compute pass writes a
//!   begin and an end timestamp (see `timestamps.rs`); dispatches stay batched and the figure is the kernel's
//!   execution alone, as the GPU measured it.
//! - "wall" otherwise: every dispatch is submitted and waited for alone, and the CPU clock around it is recorded
//!   (kernel time plus submission and wait overhead).

mod timestamps;
#[cfg(not(target_arch = "wasm32"))]
mod warm_up;

#[cfg(not(target_arch = "wasm32"))]
pub use warm_up::WarmUp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use anyhow::{anyhow, bail, Context, Result};

use timestamps::Timestamps;

use crate::platform;

/// How to pick an adapter, and which kernels run on it. Built once by the caller (main.rs from the command line and
/// the environment, `testing::gpu` for tests); the runtime reads no environment variable itself.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Substring of the adapter name (case-insensitive); None = the best-ranked adapter (`adapter_rank`).
    pub adapter: Option<String>,
    /// "vulkan" | "metal" | "dx12" | "gl"; None = the primary backends.
    pub backend: Option<String>,
    /// Ask for subgroup operations when the adapter has them and their sizes suit the kernels (`subgroup_sizes_ok`).
    /// false: the subgroup shader files are not even compiled (for comparisons, or a driver that miscompiles them).
    pub subgroups: bool,
    /// Which kernels the launchers pick (changeable later, scoped: `Gpu::scoped`).
    pub kernels: KernelOptions,
    /// The file where the first-use kernel check (`validate.rs`) keeps its verdicts for this device; None: checked
    /// once per process, nothing written.
    pub kernel_cache: Option<std::path::PathBuf>,
    /// The adapter's name when the backend reports none: wgpu's WebGPU backend passes only `adapter.info.description`,
    /// which Chrome leaves empty, so the page passes "vendor architecture" (SwiftShader: "google swiftshader"),
    /// which `SLOW_TO_BUILD` and messages need.
    pub name_if_unnamed: Option<String>,
    /// Ask the device for a storage binding limit of at most this many bytes instead of the adapter's own: a real
    /// device with a smaller adapter's limit (the page's `limit_binding_mib=` hook, which tests its too-small-limits
    /// message). The runtime uses the limits the device was granted, and WebGPU grants at least its default
    /// (128 MiB) whatever is asked.
    pub max_storage_binding: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { adapter: None, backend: None, subgroups: true, kernels: KernelOptions::default(), kernel_cache: None, name_if_unnamed: None, max_storage_binding: None }
    }
}

/// The one switch for kernel choice, held by the device: every launcher asks it (`Gpu::kernel_options`, `Gpu::vec4`,
/// `Gpu::family`, `Gpu::split_limit`) and tests change it for a scope (`Gpu::scoped`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Which convolution kernels run (and, with `Family::Naive`, the scalar elementwise kernels).
    pub family: Family,
    /// Whether elementwise ops may use their `_vec4` entry points where a range allows (`ops::vec4_range_ok`).
    pub vec4: bool,
    /// Split launches as if the storage binding limit were this many bytes (tests: exercise the batch slicer on
    /// small tensors); None = the adapter's limit. Never above the adapter's limit.
    pub max_binding: Option<u64>,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions { family: Family::Auto, vec4: true, max_binding: None }
    }
}

/// One shader file handed to `Gpu::new` by its caller (the op registry: `ops::shaders()`).
#[derive(Clone, Copy, Debug)]
pub struct ShaderFile {
    /// File name under shaders/ (named in every error).
    pub file: &'static str,
    /// WGSL source.
    pub source: &'static str,
    /// Uses subgroup operations: compiled only on devices with `Features::SUBGROUP`. Its entry points that another
    /// file defines already (a prelude it shares by concatenation) are skipped.
    pub subgroups: bool,
}

/// Lock a mutex, ignoring poisoning: a test that panicked while holding the device leaves it usable for the next.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One storage global an entry point uses: the name the launcher binds (`bind`), and the WGSL variable it fills.
#[derive(Clone, Debug)]
struct Slot {
    /// The launcher's name for the buffer: the WGSL variable's name, or for a vec4 view (`array<vec4<..>>` whose
    /// name ends in `4`, such as `x4`) the name of the tensor it views (`x`).
    bind: String,
    /// The WGSL variable's name (for messages).
    global: String,
    binding: u32,
}

/// Reflection of one entry point, read by naga at start-up; its pipeline is created at first use.
struct Kernel {
    /// The compiled pipeline, created by `pipeline()` the first time the entry point is dispatched (or asked for).
    pipeline: OnceLock<wgpu::ComputePipeline>,
    /// The shader module the entry point lives in (shared by the file's entry points).
    module: Arc<wgpu::ShaderModule>,
    /// Seconds `create_compute_pipeline` took on this device (0 until created).
    create_seconds: Mutex<f64>,
    /// Storage globals (bindings >= 1) this entry point uses, by binding. Binding 0 is always the uniform `Params`.
    slots: Vec<Slot>,
    /// Whether the entry point reads binding 0 (`Params`).
    uses_params: bool,
    workgroup_size: [u32; 3],
    file: &'static str,
    name: &'static str,
}

/// Size of one uniform slot: every `Params` struct must fit (asserted) and slots honour the 256-byte offset alignment.
const PARAM_SLOT: u64 = 256;
/// Slots per submission; the ring flushes itself when full.
const PARAM_SLOTS: u64 = 4096;

struct State {
    encoder: Option<wgpu::CommandEncoder>,
    /// CPU image of the uniform ring for the pending submission.
    params: Vec<u8>,
    pending_dispatches: u32,
    /// Free storage buffers, by byte size.
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Free staging (MAP_READ) buffers, by byte size.
    free_staging: HashMap<u64, Vec<wgpu::Buffer>>,
    buffers_created: u64,
    live_bytes: u64,
    peak_live_bytes: u64,
    dispatches_total: u64,
    submits_total: u64,
    /// When Some, profiling is on: (calls, seconds) per entry point (`fluke bench`; see the module doc).
    profile: Option<HashMap<&'static str, (u64, f64)>>,
    /// Whether the current profile is timed with timestamp queries (else wall clock per dispatch).
    profile_gpu: bool,
    /// Timestamp query set of profiling mode, made the first time timestamp profiling starts.
    timestamps: Option<Timestamps>,
    /// Profile with the wall clock even when the device has timestamps (`set_wall_clock_profiling`).
    force_wall: bool,
    /// When Some, every dispatch recorded since `start_trace`, as a `Plan` (no timing, no waiting: what the kernel
    /// check needs, in a browser too).
    trace: Option<Plan>,
    /// The threads inside a dry run (`dry_run`), each with the dispatches it planned (first-use order): their
    /// dispatches are not encoded, their copies and uploads are dropped, their readbacks return zeros. Per thread, so
    /// that one thread's dry run never drops another thread's work.
    dry: HashMap<std::thread::ThreadId, Plan>,
    /// Some on a device shared by turns (`testing::gpu()`): the thread whose turn it is, None between turns. Work
    /// recorded by any other thread panics (`check_holder`): the device's kernel choice and profiling are
    /// device-wide, so work done outside one's turn would run with another test's settings.
    holder: Option<Option<std::thread::ThreadId>>,
}

/// What a dry run (`Gpu::dry_run`) would have dispatched: each entry point with each distinct `Params` it was given,
/// once, in the order of first dispatch. The `Params` matter to lavapipe: it compiles a variant of a kernel for each
/// distinct set of the uniforms its loop bounds and branches read (Mesa's uniform inlining), so compiling ahead
/// (`warm_up`) must dispatch the real `Params` to compile what the step will run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub dispatches: Vec<(&'static str, Vec<u8>)>,
    seen: std::collections::HashSet<(&'static str, Vec<u8>)>,
}

impl Plan {
    fn add(&mut self, entry: &'static str, params: &[u8]) {
        let d = (entry, params.to_vec());
        if self.seen.insert(d.clone()) {
            self.dispatches.push(d);
        }
    }

    /// The entry points, each once, in the order of first dispatch.
    pub fn entries(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (e, _) in &self.dispatches {
            if !out.contains(e) {
                out.push(e);
            }
        }
        out
    }

    /// This plan, then the dispatches of `other` it does not have.
    pub fn then(mut self, other: Plan) -> Plan {
        for (e, p) in other.dispatches {
            self.add(e, &p);
        }
        self
    }
}

/// The device, its pipelines and the pool. Shared as `Arc<Gpu>`; its mutable state sits behind mutexes, so one device
/// can serve several threads. Dry runs are per thread (`dry_run`); the kernel choice and profiling are device-wide, so
/// work two threads record at once runs with the same settings and lands in one profile (the tests of one binary
/// share one device and take turns, `take_turns`). fluke itself records from one thread.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub timestamp_period: f32,
    kernels: HashMap<&'static str, Kernel>,
    param_ring: wgpu::Buffer,
    state: Mutex<State>,
    /// Seconds spent in `new` parsing and reflecting the shaders and creating their modules (pipelines are created
    /// at first use: `pipeline_seconds`).
    pub compile_seconds: f64,
    /// Where the kernel check's verdicts are cached (`GpuOptions::kernel_cache`).
    pub kernel_cache: Option<std::path::PathBuf>,
    /// Kernel choice for this device: family and the entry points it does not run.
    choice: Mutex<KernelChoice>,
    /// What opened this device, so that `warm_up` can open a second one like it (native only).
    #[cfg(not(target_arch = "wasm32"))]
    origin: (wgpu::Adapter, GpuOptions, Vec<ShaderFile>),
}

/// Which kernels the launchers pick, per device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// The fastest kernel that is valid on this device (the default): the GEMM kernels on adapters that are not CPUs,
    /// the register-blocked ones (with their subgroup twins) on CPU adapters.
    Auto,
    /// The register-blocked kernels without subgroup operations.
    Portable,
    /// The one-output-per-invocation baselines and the scalar elementwise kernels.
    Naive,
    /// The implicit-GEMM convolutions with tiles staged in workgroup memory (shaders/conv2d_gemm.wgsl), the kernels a
    /// real GPU wants, forced on any adapter.
    Gemm,
}

#[derive(Clone, Debug)]
struct KernelChoice {
    opts: KernelOptions,
    /// Entry points this device does not run (failed validation here, or too slow to build: `SLOW_TO_BUILD`).
    disabled: std::collections::BTreeSet<String>,
}

/// A pooled storage buffer. Dropping it returns the buffer to the pool.
pub struct GpuBuf {
    pub buffer: wgpu::Buffer,
    pub bytes: u64,
    gpu: Arc<Gpu>,
}

impl GpuBuf {
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}

impl Drop for GpuBuf {
    fn drop(&mut self) {
        let mut st = self.gpu.st();
        st.live_bytes -= self.bytes;
        st.free.entry(self.bytes).or_default().push(self.buffer.clone());
    }
}

/// One storage binding: a whole buffer or a byte range of it (to bind a batch slice of a large tensor).
#[derive(Clone, Copy)]
pub struct Bind<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

impl<'a> From<&'a GpuBuf> for Bind<'a> {
    fn from(b: &'a GpuBuf) -> Self {
        Bind { buffer: &b.buffer, offset: 0, size: b.bytes }
    }
}

fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "metal" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        other => bail!("unknown --backend '{other}': use one of vulkan, metal, dx12, gl"),
    })
}

/// The fix to print when no adapter is found.
pub const NO_ADAPTER_FIX: &str = "no GPU adapter found: install a Vulkan, Metal or DX12 driver; on Linux without a GPU \
install Mesa's software driver with `apt-get install mesa-vulkan-drivers` (lavapipe)";

/// List the adapters wgpu can see (for `fluke info` and error messages).
#[cfg(not(target_arch = "wasm32"))]
pub fn enumerate_adapters(backend: Option<&str>) -> Result<Vec<wgpu::Adapter>> {
    platform::block_on(enumerate_adapters_async(backend))
}

/// `enumerate_adapters`, awaited (in a browser: the one adapter the page's `navigator.gpu` offers).
pub async fn enumerate_adapters_async(backend: Option<&str>) -> Result<Vec<wgpu::Adapter>> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = desc_backends(backend)?;
    let instance = wgpu::Instance::new(desc);
    Ok(instance.enumerate_adapters(desc_backends(backend)?).await)
}

/// Default: the primary backends (Vulkan, Metal, DX12, and WebGPU in a browser); OpenGL only when asked for (`--backend gl`), since its
/// probing is noisy on headless machines.
fn desc_backends(backend: Option<&str>) -> Result<wgpu::Backends> {
    match backend {
        Some(b) => parse_backend(b),
        None => Ok(wgpu::Backends::PRIMARY),
    }
}

/// Rank adapters: discrete > integrated > virtual > CPU (software), then by backend preference.
fn adapter_rank(info: &wgpu::AdapterInfo) -> u32 {
    let t = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let b = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    t * 2 + b
}

/// Whether the subgroup kernels' lane layout holds on an adapter: every subgroup it may run has at least 8 lanes
/// (they load 8 or 12 shared values spread over lanes 0..7 and broadcast them) and is a power of two dividing the
/// 64-lane workgroup (each channel block is padded to whole subgroups of the largest size). SwiftShader's
/// subgroups of 4, for one, fail the first condition, so it runs the portable kernels.
pub fn subgroup_sizes_ok(info: &wgpu::AdapterInfo) -> bool {
    let (lo, hi) = (info.subgroup_min_size, info.subgroup_max_size);
    lo >= 8 && hi >= lo && hi <= 64 && lo.is_power_of_two() && hi.is_power_of_two()
}

/// Kernels an adapter's shader compiler cannot build in reasonable time, by adapter name: never chosen there (the
/// launchers fall back to the naive kernels). SwiftShader (Subzero JIT), measured with `fluke info --pipelines`
/// one entry point at a time: conv2d_forward_3x3, conv2d_forward_tiled and conv2d_backward_input_tiled over 60 s
/// each (stopped), conv2d_backward_weight_3x3 25 s, conv2d_backward_weight_tiled 6.7 s; every other kernel, the
/// vec4 convolutions included, under 1.5 s.
const SLOW_TO_BUILD: &[(&str, &[&str])] = &[(
    "swiftshader",
    &[
        "conv2d_forward_3x3",
        "conv2d_forward_tiled",
        "conv2d_backward_input_tiled",
        "conv2d_backward_weight_3x3",
        "conv2d_backward_weight_tiled",
        // Not measured to completion: `fluke info --pipelines` had not built them after 5 minutes. The stem ran
        // the naive kernels here before them too (the generic kernels above).
        "conv2d_forward_7x7s2_vec4",
        "conv2d_backward_weight_7x7s2_vec4",
    ],
)];

/// A scoped change of the device's kernel options (`Gpu::scoped`): the previous options come back when it is dropped.
pub struct OptionsGuard {
    gpu: Arc<Gpu>,
    prev: KernelOptions,
}

impl Drop for OptionsGuard {
    fn drop(&mut self) {
        lock(&self.gpu.choice).opts = self.prev;
    }
}

impl Gpu {
    /// Pick an adapter, open a device with its real limits and parse every shader in `shaders` (the caller's op
    /// registry, `ops::shaders()`); pipelines are created at first use. Blocks: native only (`new_async`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(opts: &GpuOptions, shaders: &[ShaderFile]) -> Result<Arc<Gpu>> {
        platform::block_on(Self::new_async(opts, shaders))
    }

    /// `new`, awaited: the start-up a browser page runs (a tab cannot block on the adapter and device requests).
    pub async fn new_async(opts: &GpuOptions, shaders: &[ShaderFile]) -> Result<Arc<Gpu>> {
        let wanted = opts.adapter.clone().filter(|s| !s.is_empty());
        let backend = opts.backend.clone().filter(|s| !s.is_empty());
        let adapters = enumerate_adapters_async(backend.as_deref()).await?;
        if adapters.is_empty() {
            bail!("{NO_ADAPTER_FIX}");
        }
        let adapter = match &wanted {
            Some(w) => {
                let wl = w.to_lowercase();
                let found = adapters.iter().find(|a| a.get_info().name.to_lowercase().contains(&wl));
                match found {
                    Some(a) => a.clone(),
                    None => {
                        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                        bail!("no adapter matches --adapter '{w}': available adapters are {names:?}; pass a substring of one of them")
                    }
                }
            }
            None => adapters.iter().min_by_key(|a| adapter_rank(&a.get_info())).unwrap().clone(),
        };
        Self::with_adapter(adapter, opts, shaders).await
    }

    async fn with_adapter(adapter: wgpu::Adapter, opts: &GpuOptions, shaders: &[ShaderFile]) -> Result<Arc<Gpu>> {
        let mut info = adapter.get_info();
        if info.name.trim().is_empty() {
            info.name = opts.name_if_unnamed.clone().unwrap_or_default();
        }
        let mut limits = adapter.limits();
        if let Some(cap) = opts.max_storage_binding {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
        }
        // Ask for timestamp queries when present (kernel timings in `fluke bench`); never required.
        // Subgroup operations when present: the shader files marked `subgroups` use them (faster variants on
        // lavapipe). `GpuOptions::subgroups` false leaves them out (the portable kernels run).
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP;
        if !opts.subgroups || !subgroup_sizes_ok(&info) {
            wanted.remove(wgpu::Features::SUBGROUP);
        }
        let features = adapter.features() & wanted;
        let (device, queue) = adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("fluke"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        })
        .await
        .with_context(|| format!("could not open device on adapter '{}'", info.name))?;
        // The limits the device was granted: natively exactly those asked for, in a browser WebGPU's (never below its
        // defaults).
        let limits = device.limits();
        let timestamp_period = queue.get_timestamp_period();
        device.on_uncaptured_error(std::sync::Arc::new(|e| {
            eprintln!("fluke: GPU error: {e}");
            platform::record_gpu_error(e.to_string());
        }));

        let t0 = platform::Instant::now();
        let kernels = compile_all(&device, shaders, features.contains(wgpu::Features::SUBGROUP)).await?;
        let compile_seconds = t0.elapsed().as_secs_f64();

        let info_name = info.name.to_lowercase();
        let param_ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params-ring"),
            size: PARAM_SLOT * PARAM_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Arc::new(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            timestamp_period,
            kernels,
            param_ring,
            state: Mutex::new(State {
                encoder: None,
                params: Vec::with_capacity((PARAM_SLOT * PARAM_SLOTS) as usize),
                pending_dispatches: 0,
                free: HashMap::new(),
                free_staging: HashMap::new(),
                buffers_created: 0,
                live_bytes: 0,
                peak_live_bytes: 0,
                dispatches_total: 0,
                submits_total: 0,
                profile: None,
                profile_gpu: false,
                timestamps: None,
                force_wall: false,
                trace: None,
                dry: HashMap::new(),
                holder: None,
            }),
            compile_seconds,
            kernel_cache: opts.kernel_cache.clone(),
            #[cfg(not(target_arch = "wasm32"))]
            origin: (adapter, opts.clone(), shaders.to_vec()),
            choice: Mutex::new(KernelChoice {
                opts: opts.kernels,
                disabled: SLOW_TO_BUILD
                    .iter()
                    .filter(|(name, _)| info_name.contains(name))
                    .flat_map(|(_, entries)| entries.iter().map(|e| e.to_string()))
                    .collect(),
            }),
        }))
    }

    /// Largest storage binding in bytes (lavapipe: 128 MiB).
    pub fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    /// Whether the subgroup kernel variants were compiled and may run (the device has `Features::SUBGROUP`, requested
    /// when the adapter's subgroup sizes suit them, `subgroup_sizes_ok`, unless `GpuOptions::subgroups` is false).
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// The largest subgroup the adapter may run (a subgroup kernel needs its lanes' shared data to line up with it).
    pub fn subgroup_max_size(&self) -> u32 {
        self.info.subgroup_max_size
    }

    /// Whether the device has timestamp queries, so profiling measures GPU time (requested at start-up when the
    /// adapter offers them; never required).
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// How profiling times dispatches: "gpu" (timestamp queries) or "wall" (CPU clock per dispatch).
    pub fn profile_timing(&self) -> &'static str {
        if self.has_timestamps() && !self.st().force_wall {
            "gpu"
        } else {
            "wall"
        }
    }

    /// Whether the adapter is a CPU (software rasteriser such as lavapipe): `Family::Auto` runs the GEMM convolutions
    /// on adapters that are not (the rule is in src/ops/conv2d/kernels.rs).
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Names of all compiled entry points, sorted.
    pub fn entry_points(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.kernels.keys().copied().collect();
        v.sort();
        v
    }

    /// Workgroup size of an entry point (from the shader).
    pub fn workgroup_size(&self, entry: &str) -> [u32; 3] {
        self.kernel(entry).workgroup_size
    }

    fn st(&self) -> MutexGuard<'_, State> {
        let st = lock(&self.state);
        if let Some(holder) = st.holder {
            let me = std::thread::current().id();
            if holder != Some(me) && !std::thread::panicking() {
                drop(st);
                panic!(
                    "the shared test device was used outside this test's turn (thread {me:?}; holder {holder:?}). \
                     Fix: keep `let g = fluke::testing::gpu();` alive for as long as the test uses the device \
                     (a model made with `&gpu()` outlives that temporary turn)"
                );
            }
        }
        st
    }

    /// Turn-taking for a device shared by threads (the test harness, `testing::gpu()`): after `take_turns(true)`
    /// only the thread named by `set_holder` may use the device; `take_turns(false)` lifts the check.
    pub fn take_turns(&self, on: bool) {
        lock(&self.state).holder = on.then_some(None);
    }

    /// The thread whose turn it is (None: nobody's) on a device that takes turns; no effect otherwise.
    pub fn set_holder(&self, thread: Option<std::thread::ThreadId>) {
        let mut st = lock(&self.state);
        if st.holder.is_some() {
            st.holder = Some(thread);
        }
    }

    fn kernel(&self, entry: &str) -> &Kernel {
        self.kernels.get(entry).unwrap_or_else(|| panic!("dispatch: no entry point named '{entry}' in shaders/"))
    }

    /// The pipeline of an entry point, created on first use (the creation time is kept for `pipeline_times`).
    /// A pipeline the device rejects panics naming the shader file and the entry point.
    fn pipeline<'k>(&self, k: &'k Kernel) -> &'k wgpu::ComputePipeline {
        k.pipeline.get_or_init(|| {
            let t0 = platform::Instant::now();
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(k.name),
                layout: None,
                module: &k.module,
                entry_point: Some(k.name),
                compilation_options: Default::default(),
                cache: None,
            });
            let what = format!("shaders/{}: entry point {}: pipeline creation failed", k.file, k.name);
            if let Some(e) = platform::scope_error(scope, what.clone()) {
                panic!("{what}: {e}");
            }
            *lock(&k.create_seconds) = t0.elapsed().as_secs_f64();
            pipeline
        })
    }

    /// Create the pipelines of `entries` now (those not created yet), e.g. to measure them or to move their cost
    /// out of a timed step. Unknown names panic.
    pub fn prepare(&self, entries: &[&str]) {
        for e in entries {
            self.pipeline(self.kernel(e));
        }
    }

    /// (entry point, shader file, seconds to create its pipeline) of every pipeline created so far, slowest first.
    pub fn pipeline_times(&self) -> Vec<(&'static str, &'static str, f64)> {
        let mut v: Vec<_> =
            self.kernels.values().filter(|k| k.pipeline.get().is_some()).map(|k| (k.name, k.file, *lock(&k.create_seconds))).collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    /// Seconds spent creating pipelines so far (they are created at first use).
    pub fn pipeline_seconds(&self) -> f64 {
        self.kernels.values().map(|k| *lock(&k.create_seconds)).sum()
    }

    /// The kernel options the launchers follow on this device (see `KernelOptions`).
    pub fn kernel_options(&self) -> KernelOptions {
        lock(&self.choice).opts
    }

    /// Change the kernel options until the returned guard is dropped (tests and checks: force a family, turn vec4
    /// off, split launches at a small binding limit). Guards nest: each restores what it found.
    pub fn scoped(self: &Arc<Self>, change: impl FnOnce(&mut KernelOptions)) -> OptionsGuard {
        let mut c = lock(&self.choice);
        let prev = c.opts;
        change(&mut c.opts);
        OptionsGuard { gpu: self.clone(), prev }
    }

    /// The kernel family the launchers use on this device.
    pub fn family(&self) -> Family {
        lock(&self.choice).opts.family
    }

    /// Whether elementwise launchers may use `_vec4` entry points (the option is on and the family is not Naive).
    pub fn vec4(&self) -> bool {
        let o = lock(&self.choice).opts;
        o.vec4 && o.family != Family::Naive
    }

    /// The binding size launches are split against (`ops::runs`): the adapter's limit, or the options' smaller one.
    pub fn split_limit(&self) -> u64 {
        let real = self.max_binding();
        lock(&self.choice).opts.max_binding.map_or(real, |o| o.min(real))
    }

    /// Whether an entry point may run on this device (not replaced: see `disable`).
    pub fn allowed(&self, entry: &str) -> bool {
        !lock(&self.choice).disabled.contains(entry)
    }

    /// Never run an entry point on this device from now on: a subgroup kernel gives way to its portable twin, a
    /// portable one to the naive kernel (the rules in `src/ops/conv2d/kernels.rs`).
    pub fn disable(&self, entry: &str) {
        lock(&self.choice).disabled.insert(entry.to_string());
    }

    /// The kernel options and disabled entry points, to put back later with `restore_choice` (the test harness
    /// gives each test the device as the previous test found it; `testing` is native-only).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn choice_snapshot(&self) -> (KernelOptions, std::collections::BTreeSet<String>) {
        let c = lock(&self.choice);
        (c.opts, c.disabled.clone())
    }

    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn restore_choice(&self, snap: (KernelOptions, std::collections::BTreeSet<String>)) {
        let mut c = lock(&self.choice);
        c.opts = snap.0;
        c.disabled = snap.1;
    }

    /// The entry points this device does not run (`disable`).
    pub fn disabled(&self) -> Vec<String> {
        lock(&self.choice).disabled.iter().cloned().collect()
    }

    // ---------------------------------------------------------------------------------------------- buffers

    /// A storage buffer of `bytes` from the pool (contents undefined). Errors name the limit when too large.
    pub fn alloc(self: &Arc<Self>, bytes: u64) -> GpuBuf {
        let bytes = bytes.max(4);
        let mut st = self.st();
        let buffer = match st.free.get_mut(&bytes).and_then(|v| v.pop()) {
            Some(b) => b,
            None => {
                assert!(
                    bytes <= self.limits.max_buffer_size,
                    "alloc: buffer of {bytes} bytes exceeds the adapter's max_buffer_size {}",
                    self.limits.max_buffer_size
                );
                st.buffers_created += 1;
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        st.live_bytes += bytes;
        st.peak_live_bytes = st.peak_live_bytes.max(st.live_bytes);
        GpuBuf { buffer, bytes, gpu: self.clone() }
    }

    /// Overwrite a buffer with f32 data. Pending dispatches are submitted first so the write lands after them
    /// (queue writes execute before the next submission's commands).
    pub fn write(&self, buf: &GpuBuf, data: &[f32]) {
        assert!((data.len() * 4) as u64 <= buf.bytes, "write: {} floats do not fit a buffer of {} bytes", data.len(), buf.bytes);
        if self.st().pending_dispatches > 0 {
            self.flush();
        }
        if !data.is_empty() && !self.is_dry() {
            self.queue.write_buffer(&buf.buffer, 0, bytemuck::cast_slice(data));
        }
    }

    /// Read a buffer back to the CPU (submits pending work and waits). Blocks: in a browser use `read_f32_async`
    /// (this panics there unless nothing had to be waited for, see `platform::block_on`).
    pub fn read_f32(&self, buf: &GpuBuf, len: usize) -> Vec<f32> {
        platform::block_on(self.read_f32_async(buf, len))
    }

    /// `read_f32`, awaited: the one readback path. Natively the device is polled until the copy is done, so the
    /// map has already completed when it is awaited; in a browser the await yields to the page until it has.
    pub async fn read_f32_async(&self, buf: &GpuBuf, len: usize) -> Vec<f32> {
        let bytes = (len * 4) as u64;
        if bytes == 0 {
            return Vec::new();
        }
        if self.is_dry() {
            return vec![0.0; len];
        }
        let staging = {
            let mut st = self.st();
            match st.free_staging.get_mut(&bytes).and_then(|v| v.pop()) {
                Some(b) => b,
                None => {
                    st.buffers_created += 1;
                    self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("staging"),
                        size: bytes,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                }
            }
        };
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(&buf.buffer, 0, &staging, 0, bytes));
        self.flush();
        let slice = staging.slice(..);
        let (tx, rx) = platform::oneshot();
        slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r));
        platform::wait_for_gpu(&self.device);
        rx.await.expect("read_f32: buffer map failed");
        let out = {
            let view = slice.get_mapped_range().expect("read_f32: mapped range");
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.st().free_staging.entry(bytes).or_default().push(staging);
        out
    }

    /// Copy `bytes` from one buffer to another (recorded, not executed yet).
    pub fn copy(&self, src: &wgpu::Buffer, src_off: u64, dst: &wgpu::Buffer, dst_off: u64, bytes: u64) {
        if bytes > 0 && !self.is_dry() {
            self.with_encoder(|enc| enc.copy_buffer_to_buffer(src, src_off, dst, dst_off, bytes));
        }
    }

    /// Number of GPU buffers ever created (storage + staging). Constant across steady-state training steps.
    pub fn buffers_created(&self) -> u64 {
        self.st().buffers_created
    }
    /// Bytes of storage buffers currently handed out.
    pub fn live_bytes(&self) -> u64 {
        self.st().live_bytes
    }
    /// Largest `live_bytes` seen since the last `reset_peak`.
    pub fn peak_live_bytes(&self) -> u64 {
        self.st().peak_live_bytes
    }
    pub fn reset_peak(&self) {
        let mut st = self.st();
        st.peak_live_bytes = st.live_bytes;
    }
    pub fn dispatches_total(&self) -> u64 {
        self.st().dispatches_total
    }
    pub fn submits_total(&self) -> u64 {
        self.st().submits_total
    }

    // ---------------------------------------------------------------------------------------------- dispatch

    fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut st = self.st();
        f(self.pending_encoder(&mut st))
    }

    /// The command encoder collecting this submission's work (created on first use after a flush).
    fn pending_encoder<'s>(&self, st: &'s mut State) -> &'s mut wgpu::CommandEncoder {
        st.encoder.get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }))
    }

    /// Workgroup grid for `n` invocations of a 1-D kernel with `wg` lanes per group, folded into (x, y) when more
    /// than 65,535 groups are needed.
    pub fn groups_1d(&self, n: u64, wg: u32) -> [u32; 3] {
        let groups = n.div_ceil(wg as u64).max(1);
        let maxd = self.limits.max_compute_workgroups_per_dimension as u64;
        if groups <= maxd {
            [groups as u32, 1, 1]
        } else {
            let y = groups.div_ceil(maxd);
            let x = groups.div_ceil(y);
            assert!(y <= maxd, "groups_1d: {n} invocations exceed the 2-D dispatch range");
            [x as u32, y as u32, 1]
        }
    }

    /// Record one dispatch of `entry` with `params` (the uniform at binding 0) and its storage buffers by name:
    /// `("x", x.bind())` fills the entry point's global `x`, or its vec4 view `x4` (see `Slot`). Every global the entry
    /// point uses must be named once, and no other name may be passed; either mistake panics naming the entry point,
    /// the name and what the entry point uses.
    pub fn dispatch<P: bytemuck::Pod>(&self, entry: &str, params: &P, bufs: &[(&str, Bind)], groups: [u32; 3]) {
        let k = self.kernel(entry);
        let resolved = resolve(k, bufs);
        self.dispatch_resolved(k, params, &resolved, groups);
    }

    /// `dispatch` of a 1-D kernel over `n` invocations (grid folded past 65,535 groups).
    pub fn dispatch_1d<P: bytemuck::Pod>(&self, entry: &str, params: &P, bufs: &[(&str, Bind)], n: u64) {
        let wg = self.kernel(entry).workgroup_size;
        let groups = self.groups_1d(n, wg[0] * wg[1] * wg[2]);
        self.dispatch(entry, params, bufs, groups);
    }

    fn dispatch_resolved<P: bytemuck::Pod>(&self, k: &Kernel, params: &P, bufs: &[(u32, Bind)], groups: [u32; 3]) {
        let wall_profiling = {
            let st = self.st();
            st.profile.is_some() && !st.profile_gpu
        };
        if wall_profiling {
            // No timestamps: time this dispatch alone on the CPU clock: drain what is pending, record, submit, wait.
            self.sync();
            let t0 = platform::Instant::now();
            self.record_dispatch(k, params, bufs, groups);
            self.sync();
            let dt = t0.elapsed().as_secs_f64();
            let mut st = self.st();
            let e = st.profile.as_mut().unwrap().entry(k.name).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += dt;
        } else {
            // Not profiling, or profiling with timestamps (`record_dispatch` adds the pass's timestamp writes).
            self.record_dispatch(k, params, bufs, groups);
        }
    }

    /// Start (or stop) per-dispatch profiling, GPU timestamps or wall clock as `profile_timing()` says. Starting
    /// clears what was collected. Pending work is flushed first, so only dispatches recorded while it is on count.
    /// Wall-clock profiling waits for every dispatch and timestamp profiling for every flush: for `fluke bench`.
    pub fn set_profiling(&self, on: bool) {
        self.flush();
        let gpu = on && self.profile_timing() == "gpu";
        let mut st = self.st();
        st.profile = if on { Some(HashMap::new()) } else { None };
        st.profile_gpu = gpu;
        if gpu && st.timestamps.is_none() {
            st.timestamps = Some(Timestamps::new(&self.device));
        }
    }

    /// Profile with the wall clock even when the device has timestamp queries (to compare the two, or to exercise
    /// the fallback on a device that has them). Takes effect at the next `set_profiling(true)`.
    pub fn set_wall_clock_profiling(&self, on: bool) {
        self.st().force_wall = on;
    }

    /// Run `f` with profiling on and return the summed time of the dispatches it recorded (GPU time with
    /// timestamps, else wall clock per dispatch; see `profile_timing()`). Profiling is off afterwards.
    pub fn profile_seconds(&self, f: impl FnOnce()) -> f64 {
        self.set_profiling(true);
        f();
        let secs = self.take_profile().iter().map(|&(_, _, s)| s).sum();
        self.set_profiling(false);
        secs
    }

    /// (entry point, calls, seconds) collected since `set_profiling(true)`, slowest first. Submits and waits for
    /// pending work so its timestamps are in; the counts start again from zero (profiling stays on).
    pub fn take_profile(&self) -> Vec<(&'static str, u64, f64)> {
        self.sync();
        let mut st = self.st();
        let mut v: Vec<_> = st.profile.as_mut().map(|p| p.drain().map(|(k, (c, s))| (k, c, s)).collect()).unwrap_or_default();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    /// Start recording which entry points the following dispatches run (`take_trace`). Unlike profiling it neither
    /// times nor waits for anything.
    pub fn start_trace(&self) {
        self.st().trace = Some(Plan::default());
    }

    /// The entry points dispatched since `start_trace`, sorted, each once; tracing stops.
    pub fn take_trace(&self) -> Vec<&'static str> {
        let mut v = self.take_trace_plan().entries();
        v.sort();
        v
    }

    /// What was dispatched since `start_trace`, as a `Plan` (each entry point with each distinct `Params` once, in
    /// the order of first dispatch); tracing stops.
    pub fn take_trace_plan(&self) -> Plan {
        self.st().trace.take().unwrap_or_default()
    }

    /// Run `f` without running anything on the device: dispatches, copies and uploads are dropped and readbacks
    /// return zeros (buffers are still handed out). Returns what `f` would have dispatched (`Plan`: each entry point
    /// with each distinct `Params` once, in the order of first dispatch): what a step needs compiled before it runs
    /// (`warm_up`). `f` must not trust the values it reads, nor keep what it computed. Pending work is submitted
    /// first. Only this thread's work is dry: other threads' dispatches run (though the kernel choice and profiling
    /// stay device-wide).
    pub fn dry_run(&self, f: impl FnOnce()) -> Plan {
        self.flush();
        let me = std::thread::current().id();
        let outer = self.st().dry.insert(me, Plan::default());
        assert!(outer.is_none(), "dry_run: already inside a dry run on this thread");
        struct Reset<'a>(&'a Gpu);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.st().dry.remove(&std::thread::current().id());
            }
        }
        let reset = Reset(self);
        f();
        let plan = self.st().dry.remove(&me).unwrap_or_default();
        drop(reset);
        plan
    }

    /// Inside `dry_run` on this thread: what a launcher computes now is never run, so it must not be kept.
    pub fn is_dry(&self) -> bool {
        self.st().dry.contains_key(&std::thread::current().id())
    }

    fn record_dispatch<P: bytemuck::Pod>(&self, k: &Kernel, params: &P, bufs: &[(u32, Bind)], groups: [u32; 3]) {
        let entry = k.name;
        let pbytes = bytemuck::bytes_of(params);
        assert!(pbytes.len() as u64 <= PARAM_SLOT, "{entry}: Params larger than {PARAM_SLOT} bytes");
        if groups.contains(&0) {
            return;
        }
        {
            let mut st = self.st();
            if let Some(t) = st.trace.as_mut() {
                t.add(entry, pbytes);
            }
            if let Some(plan) = st.dry.get_mut(&std::thread::current().id()) {
                plan.add(entry, pbytes);
                return;
            }
        }
        let ring_full = self.st().params.len() as u64 >= PARAM_SLOT * PARAM_SLOTS;
        let queries_full = self.st().timestamps.as_ref().is_some_and(|t| t.is_full());
        if ring_full || queries_full {
            self.flush();
        }
        let pipeline = self.pipeline(k);
        let layout = pipeline.get_bind_group_layout(0);
        let mut st = self.st();
        let offset = st.params.len() as u64;
        st.params.extend_from_slice(pbytes);
        st.params.resize((offset + PARAM_SLOT) as usize, 0);
        let mut entries = Vec::with_capacity(bufs.len() + 1);
        if k.uses_params {
            entries.push(wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.param_ring,
                    offset,
                    size: Some(std::num::NonZeroU64::new(pbytes.len().max(16).next_multiple_of(16) as u64).unwrap()),
                }),
            });
        }
        for &(b, bind) in bufs {
            assert!(
                bind.size <= self.max_binding(),
                "{entry}: binding {b} is {} bytes, over the adapter's storage binding limit of {} bytes; use a smaller batch or size",
                bind.size,
                self.max_binding()
            );
            entries.push(wgpu::BindGroupEntry {
                binding: b,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: bind.buffer,
                    offset: bind.offset,
                    size: Some(std::num::NonZeroU64::new(bind.size.max(4)).unwrap()),
                }),
            });
        }
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
        {
            self.pending_encoder(&mut st); // make sure this submission's encoder exists
            // Split the borrow: the encoder records a pass that may write into the timestamp query set.
            let State { encoder, timestamps, profile_gpu, .. } = &mut *st;
            let timestamp_writes = match timestamps {
                Some(ts) if *profile_gpu => Some(ts.next_pass(k.name)),
                _ => None,
            };
            let enc = encoder.as_mut().unwrap();
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(entry), timestamp_writes });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        st.pending_dispatches += 1;
        st.dispatches_total += 1;
    }

    /// Submit everything recorded so far. When profiling with timestamps and passes wrote some, their resolve
    /// goes at the end of the submission and this waits for it, reads the times back and adds them to the profile.
    pub fn flush(&self) {
        let mut st = self.st();
        let mut enc = st.encoder.take();
        let timed = st.timestamps.as_ref().is_some_and(|t| !t.is_empty());
        if timed {
            // A pass wrote timestamps, so it was recorded into this submission's encoder.
            st.timestamps.as_ref().unwrap().resolve(enc.as_mut().expect("flush: timestamps without an encoder"));
        }
        if !st.params.is_empty() {
            self.queue.write_buffer(&self.param_ring, 0, &st.params);
            st.params.clear();
        }
        if let Some(enc) = enc {
            self.queue.submit([enc.finish()]);
            st.submits_total += 1;
        }
        st.pending_dispatches = 0;
        if timed {
            let times = st.timestamps.as_mut().unwrap().read(&self.device, self.timestamp_period);
            // set_profiling flushes before it changes mode, so passes with timestamps always have a profile.
            let profile = st.profile.as_mut().expect("flush: timestamps recorded while not profiling");
            for (name, secs) in times {
                let e = profile.entry(name).or_insert((0, 0.0));
                e.0 += 1;
                e.1 += secs;
            }
        }
    }

    /// Submit and wait until the GPU is idle.
    pub fn sync(&self) {
        self.flush();
        platform::wait_for_gpu(&self.device);
    }
}

/// Match the launcher's named buffers to the entry point's globals: (binding, buffer) for each global it uses.
fn resolve<'a>(k: &Kernel, bufs: &[(&str, Bind<'a>)]) -> Vec<(u32, Bind<'a>)> {
    let uses = || k.slots.iter().map(|s| s.bind.as_str()).collect::<Vec<_>>().join(", ");
    for (i, (name, _)) in bufs.iter().enumerate() {
        if !k.slots.iter().any(|s| s.bind == *name) {
            panic!("{}: the launcher passed buffer '{name}', which shaders/{}::{} does not use (it uses: {})", k.name, k.file, k.name, uses());
        }
        if bufs[..i].iter().any(|(n, _)| n == name) {
            panic!("{}: the launcher passed buffer '{name}' twice", k.name);
        }
    }
    k.slots
        .iter()
        .map(|s| {
            let b = bufs.iter().find(|(n, _)| *n == s.bind).map(|&(_, b)| b).unwrap_or_else(|| {
                let passed: Vec<&str> = bufs.iter().map(|(n, _)| *n).collect();
                panic!(
                    "{}: shaders/{} needs buffer '{}' (@binding({}) {}) and the launcher did not pass it (passed: {})",
                    k.name,
                    k.file,
                    s.bind,
                    s.binding,
                    s.global,
                    passed.join(", ")
                )
            });
            (s.binding, b)
        })
        .collect()
}

/// Parse one WGSL file with naga and return the module and its validation info; errors name the file.
pub fn parse_shader(file: &str, src: &str) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| anyhow!("shaders/{file}: {}", e.emit_to_string(src)))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::SUBGROUP)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| anyhow!("shaders/{file}: validation failed: {}", e.emit_to_string(src)))?;
    Ok((module, info))
}

async fn compile_all(device: &wgpu::Device, shaders: &[ShaderFile], subgroups: bool) -> Result<HashMap<&'static str, Kernel>> {
    let mut kernels = HashMap::new();
    // Files without subgroup operations first: a subgroup file that concatenates its op's file as a prelude then
    // finds that file's entry points compiled already and skips its copies of them.
    let plain = shaders.iter().filter(|s| !s.subgroups);
    let extra = shaders.iter().filter(|s| s.subgroups && subgroups);
    for sf in plain.chain(extra) {
        let (file, src) = (sf.file, sf.source);
        let (module, info) = parse_shader(file, src)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let sm = Arc::new(device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(file),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        }));
        if let Some(e) = scope.pop().await {
            bail!("shaders/{file}: shader module rejected by the device: {e}");
        }
        for (i, ep) in module.entry_points.iter().enumerate() {
            if ep.stage != naga::ShaderStage::Compute {
                continue;
            }
            if sf.subgroups && kernels.contains_key(ep.name.as_str()) {
                continue;
            }
            let name: &'static str = Box::leak(ep.name.clone().into_boxed_str());
            if kernels.contains_key(name) {
                bail!("shaders/{file}: entry point {name} is defined twice across shaders/");
            }
            let (slots, uses_params) = reflect_slots(&module, info.get_entry_point(i), file, name)?;
            let k = Kernel {
                pipeline: OnceLock::new(),
                module: sm.clone(),
                create_seconds: Mutex::new(0.0),
                slots,
                uses_params,
                workgroup_size: ep.workgroup_size,
                file,
                name,
            };
            kernels.insert(name, k);
        }
    }
    Ok(kernels)
}

/// The storage globals an entry point uses (by binding) and whether it reads the uniform `Params` at binding 0.
/// An entry point that uses both `x` and its view `x4` gets the one buffer named `x` in both.
fn reflect_slots(
    module: &naga::Module,
    fi: &naga::valid::FunctionInfo,
    file: &str,
    entry: &str,
) -> Result<(Vec<Slot>, bool)> {
    let mut slots: Vec<Slot> = Vec::new();
    let mut uses_params = false;
    for (h, gv) in module.global_variables.iter() {
        if fi[h].is_empty() {
            continue;
        }
        let Some(rb) = &gv.binding else { continue };
        if rb.group != 0 {
            bail!("shaders/{file}: {entry}: only @group(0) is supported");
        }
        if rb.binding == 0 {
            uses_params = true;
            continue;
        }
        let global = gv.name.clone().unwrap_or_default();
        let is_vec4_array = match module.types[gv.ty].inner {
            naga::TypeInner::Array { base, .. } => {
                matches!(module.types[base].inner, naga::TypeInner::Vector { size: naga::VectorSize::Quad, .. })
            }
            _ => false,
        };
        let bind = match global.strip_suffix('4') {
            Some(stem) if is_vec4_array && !stem.is_empty() => stem.to_string(),
            _ => global.clone(),
        };
        slots.push(Slot { bind, global, binding: rb.binding });
    }
    slots.sort_by_key(|s| s.binding);
    Ok((slots, uses_params))
}
