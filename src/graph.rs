//! The autograd tape.
//!
//! Every op that runs while the tape is recording appends one node: the ids of its inputs and a closure, its
//! backward rule, that owns exactly the tensors the op saved. `backward` walks the nodes in reverse (the order they
//! were recorded is already topological), feeds each node the gradient of its output and sums the gradients it
//! returns into its inputs. Where a tensor feeds several ops (U-Net skips, residual adds) the contributions are
//! added with the `add` kernel, so backward kernels never accumulate with `+=`: each overwrites its output.
//!
//! In inference mode (`Tape::inference()`) `record` stores nothing: the closure and the tensors it captured are
//! dropped at once, so no activation outlives the op that consumes it.
//!
//! Leaves: parameters enter as `tape.param(&tensor)` (they get an id and so a gradient); inputs and constants are
//! `Var::constant(tensor)` (no id, no gradient, no backward work spent on them).

use std::cell::RefCell;
use std::collections::HashMap;

use crate::tensor::Tensor;

/// A tensor flowing through the graph. `id` is its node on the tape, None when no gradient flows to it.
#[derive(Clone, Debug)]
pub struct Var {
    pub t: Tensor,
    pub id: Option<usize>,
}

impl Var {
    /// A value that needs no gradient (an input image, a mask, a constant).
    pub fn constant(t: Tensor) -> Var {
        Var { t, id: None }
    }
    pub fn shape(&self) -> &[usize] {
        &self.t.shape
    }
}

/// The gradient of a node's output in, the gradients of its inputs out (None where an input needs none).
pub type BackwardFn = Box<dyn FnOnce(&Tensor) -> Vec<Option<Tensor>>>;

struct Node {
    op: &'static str,
    inputs: Vec<Option<usize>>,
    backward: Option<BackwardFn>,
}

pub struct Tape {
    recording: bool,
    nodes: RefCell<Vec<Node>>,
}

/// Gradients after `backward`, by node id.
pub struct Grads {
    grads: HashMap<usize, Tensor>,
}

impl Grads {
    /// The gradient of `v` (None when nothing flowed into it).
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        v.id.and_then(|id| self.grads.get(&id))
    }
    pub fn take(&mut self, v: &Var) -> Option<Tensor> {
        v.id.and_then(|id| self.grads.remove(&id))
    }
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    /// A recording tape (training).
    pub fn new() -> Tape {
        Tape { recording: true, nodes: RefCell::new(Vec::new()) }
    }

    /// A tape that records nothing (inference, evaluation).
    pub fn inference() -> Tape {
        Tape { recording: false, nodes: RefCell::new(Vec::new()) }
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A trainable leaf: gets an id so `backward` reports its gradient.
    pub fn param(&self, t: &Tensor) -> Var {
        if !self.recording {
            return Var::constant(t.clone());
        }
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node { op: "param", inputs: Vec::new(), backward: None });
        Var { t: t.clone(), id: Some(nodes.len() - 1) }
    }

    /// Record an op's output. `backward` receives dL/d(out) and returns one entry per input, in order.
    /// When not recording, or when no input needs a gradient, nothing is stored.
    pub fn record(
        &self,
        op: &'static str,
        inputs: &[&Var],
        out: Tensor,
        backward: impl FnOnce(&Tensor) -> Vec<Option<Tensor>> + 'static,
    ) -> Var {
        if !self.recording || inputs.iter().all(|v| v.id.is_none()) {
            return Var::constant(out);
        }
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node { op, inputs: inputs.iter().map(|v| v.id).collect(), backward: Some(Box::new(backward)) });
        Var { t: out, id: Some(nodes.len() - 1) }
    }

    /// Backpropagate from `out` with seed gradient `seed` (same shape as `out`), consuming the recorded rules.
    /// Saved tensors are released node by node as the walk goes.
    pub fn backward(&self, out: &Var, seed: Tensor) -> Grads {
        let root = out.id.expect("backward: the output does not depend on any parameter");
        assert_eq!(seed.shape, out.t.shape, "backward: seed shape differs from the output's");
        let mut grads: HashMap<usize, Tensor> = HashMap::new();
        grads.insert(root, seed);
        let mut nodes = self.nodes.borrow_mut();
        for id in (0..=root).rev() {
            let node = &mut nodes[id];
            let Some(rule) = node.backward.take() else { continue };
            let Some(g) = grads.remove(&id) else { continue };
            let input_grads = rule(&g);
            assert_eq!(input_grads.len(), node.inputs.len(), "backward: op {} returned the wrong number of gradients", node.op);
            for (inp, gi) in node.inputs.iter().zip(input_grads) {
                let (Some(inp), Some(gi)) = (inp, gi) else { continue };
                let sum = match grads.remove(inp) {
                    Some(prev) => crate::ops::add::add_forward(&prev, &gi),
                    None => gi,
                };
                grads.insert(*inp, sum);
            }
        }
        // Keep only leaf gradients (intermediate ones were consumed above).
        nodes.clear();
        Grads { grads }
    }
}
