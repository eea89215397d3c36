//! GPU timestamp queries: how profiling mode (`Gpu::set_profiling`) times each dispatch when the adapter has
//! `Features::TIMESTAMP_QUERY`.
//!
//! Every dispatch is its own compute pass, so each pass asks the GPU to write two timestamps into a query set: one
//! when the pass begins (query `2i`) and one when it ends (query `2i + 1`). At `flush` the written range is resolved
//! into a buffer (8-byte ticks), copied to a mappable buffer, read back after the submission completes, and each
//! pass's `end - begin` ticks times `Queue::get_timestamp_period()` (nanoseconds per tick) is added to its entry
//! point. Only the kernel's execution is measured: no submission, no CPU-GPU round trip, no wait.
//!
//! One query set holds `wgpu::QUERY_SET_MAX_QUERIES` (4096) queries, i.e. 2048 dispatches; when it is full the
//! runtime flushes (and so reads it back) before recording the next dispatch, then starts again at query 0.

/// Queries per set (two per dispatch).
const QUERIES: u32 = wgpu::QUERY_SET_MAX_QUERIES;
/// Bytes of one resolved query (a u64 tick count).
const QUERY_BYTES: u64 = wgpu::QUERY_SIZE as u64;

pub(super) struct Timestamps {
    set: wgpu::QuerySet,
    /// Destination of `resolve_query_set` (QUERY_RESOLVE | COPY_SRC; it cannot be mapped itself).
    resolve: wgpu::Buffer,
    /// MAP_READ copy of `resolve`, read on the CPU.
    readback: wgpu::Buffer,
    /// Entry point of each pass recorded since the last read, in order: pass `i` wrote queries `2i` and `2i + 1`.
    pending: Vec<&'static str>,
}

impl Timestamps {
    pub(super) fn new(device: &wgpu::Device) -> Self {
        let bytes = QUERIES as u64 * QUERY_BYTES;
        let buffer = |label, usage| device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: bytes, usage, mapped_at_creation: false });
        Timestamps {
            set: device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile-timestamps"), ty: wgpu::QueryType::Timestamp, count: QUERIES }),
            resolve: buffer("profile-resolve", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            readback: buffer("profile-readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            pending: Vec::new(),
        }
    }

    /// No room for another pass: flush (which reads the set back) before recording one.
    pub(super) fn is_full(&self) -> bool {
        (self.pending.len() as u32 + 1) * 2 > QUERIES
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The timestamp writes for the next compute pass, which runs entry point `name`.
    pub(super) fn next_pass(&mut self, name: &'static str) -> wgpu::ComputePassTimestampWrites<'_> {
        assert!(!self.is_full(), "profile: timestamp query set is full (flush before recording)");
        let i = self.pending.len() as u32;
        self.pending.push(name);
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        }
    }

    /// Record, at the end of the submission, the resolve of every written query and its copy to the readback buffer.
    pub(super) fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        let n = 2 * self.pending.len() as u32;
        if n > 0 {
            enc.resolve_query_set(&self.set, 0..n, &self.resolve, 0);
            enc.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, n as u64 * QUERY_BYTES);
        }
    }

    /// After the submission holding `resolve` was made: wait for it, read the ticks and return each pending pass's
    /// (entry point, GPU seconds) in recording order. Empties the set for reuse.
    pub(super) fn read(&mut self, device: &wgpu::Device, ns_per_tick: f32) -> Vec<(&'static str, f64)> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let bytes = 2 * self.pending.len() as u64 * QUERY_BYTES;
        let slice = self.readback.slice(..bytes);
        // Profiling is for `fluke bench` (native): it blocks, through the platform seam like every other wait.
        let (tx, rx) = crate::platform::oneshot();
        slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r));
        crate::platform::wait_for_gpu(device);
        crate::platform::block_on(rx).expect("profile: timestamp readback map failed");
        let out = {
            let view = slice.get_mapped_range().expect("profile: timestamp mapped range");
            // Copied out rather than cast: the mapped range carries no alignment promise for u64.
            let ticks: Vec<u64> = view.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).collect();
            self.pending
                .iter()
                .enumerate()
                // saturating: a counter that wrapped (or a driver writing end < begin) reads as 0, never as ~2^64.
                .map(|(i, &name)| (name, ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * ns_per_tick as f64 * 1e-9))
                .collect()
        };
        self.readback.unmap();
        self.pending.clear();
        out
    }
}
