//! `Tensor`: an f32, row-major (NCHW for 4-D), contiguous array on the GPU: a shape and a pooled buffer.
//!
//! Tensors are cheap to clone (the buffer is reference counted) and immutable by convention: every op writes a new
//! tensor. The only in-place writers are the optimizer (parameters, moments) and batch-norm's running statistics.

use std::rc::Rc;
use std::sync::Arc;

use crate::gpu::{Bind, Gpu, GpuBuf};

#[derive(Clone)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub buf: Rc<GpuBuf>,
}

impl Tensor {
    /// A tensor with undefined contents (every kernel that produces one overwrites all of it).
    pub fn empty(gpu: &Arc<Gpu>, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor { shape: shape.to_vec(), buf: Rc::new(gpu.alloc((n.max(1) * 4) as u64)) }
    }

    /// Upload host data.
    pub fn from_slice(gpu: &Arc<Gpu>, shape: &[usize], data: &[f32]) -> Tensor {
        let n: usize = shape.iter().product();
        assert_eq!(n, data.len(), "Tensor::from_slice: shape {shape:?} holds {n} values, got {}", data.len());
        let t = Tensor::empty(gpu, shape);
        gpu.write(&t.buf, data);
        t
    }

    /// A tensor filled with `value` (uploaded from the host; used for parameters and seeds, not in hot loops).
    pub fn full(gpu: &Arc<Gpu>, shape: &[usize], value: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_slice(gpu, shape, &vec![value; n])
    }

    pub fn zeros(gpu: &Arc<Gpu>, shape: &[usize]) -> Tensor {
        Tensor::full(gpu, shape, 0.0)
    }

    /// Read back to the host (waits for the GPU).
    pub fn to_vec(&self) -> Vec<f32> {
        self.gpu().read_f32(&self.buf, self.numel())
    }

    /// `to_vec`, awaited (the readback a browser page uses; `Gpu::read_f32_async`).
    pub async fn to_vec_async(&self) -> Vec<f32> {
        self.gpu().read_f32_async(&self.buf, self.numel()).await
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        self.buf.gpu()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> u64 {
        (self.numel() * 4) as u64
    }

    /// The four NCHW dimensions; panics with `op` in the message when the tensor is not 4-D.
    pub fn nchw(&self, op: &str) -> (usize, usize, usize, usize) {
        assert_eq!(self.shape.len(), 4, "{op}: expected a 4-D NCHW tensor, got shape {:?}", self.shape);
        (self.shape[0], self.shape[1], self.shape[2], self.shape[3])
    }

    /// The whole buffer as a binding.
    pub fn bind(&self) -> Bind<'_> {
        Bind { buffer: &self.buf.buffer, offset: 0, size: self.bytes().max(4) }
    }

    /// A byte range of the buffer as a binding (for batch slices of tensors over the binding limit).
    pub fn bind_range(&self, first_elem: usize, elems: usize) -> Bind<'_> {
        assert!(first_elem + elems <= self.numel(), "bind_range: [{first_elem}, +{elems}) outside {:?}", self.shape);
        Bind { buffer: &self.buf.buffer, offset: (first_elem * 4) as u64, size: (elems.max(1) * 4) as u64 }
    }

    /// Same buffer, new shape with the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        assert_eq!(n, self.numel(), "reshape: {:?} -> {shape:?} changes the element count", self.shape);
        Tensor { shape: shape.to_vec(), buf: self.buf.clone() }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}
