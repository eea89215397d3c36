//! Connected components of a binary mask (8-connectivity), the largest one, and bounding boxes.
//!
//! Labelling is the classic two-pass union-find (no recursion, so a 12 Mpx mask cannot overflow a stack):
//!   pass 1, raster order: a fluke pixel looks at its already-visited 8-neighbours (W, NW, N, NE); with none it
//!           opens a provisional label, else it takes the smallest neighbour label and unions all of them;
//!   pass 2: every provisional label is replaced by its root, and roots are renumbered 1..=k in the order their
//!           component is first met in raster order (so labels are deterministic: top-most, then left-most first).
//! Union-find uses path halving and links the larger root under the smaller, so roots are the smallest label.

/// Half-open box: columns `x0..x1`, rows `y0..y1` (`x1 - x0` = width in pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BBox {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl BBox {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
    /// Smallest box holding both.
    pub fn union(&self, o: &BBox) -> BBox {
        BBox { x0: self.x0.min(o.x0), y0: self.y0.min(o.y0), x1: self.x1.max(o.x1), y1: self.y1.max(o.y1) }
    }
    /// Grown by `m` pixels on each side, clipped to a (w, h) image.
    pub fn expand(&self, m: u32, w: u32, h: u32) -> BBox {
        BBox {
            x0: self.x0.saturating_sub(m),
            y0: self.y0.saturating_sub(m),
            x1: (self.x1 + m).min(w),
            y1: (self.y1 + m).min(h),
        }
    }
}

/// One 8-connected component: its label (1..=k) in the label image, pixel count, and box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub label: u32,
    pub area: usize,
    pub bbox: BBox,
}

/// Root of `i` with path halving (each visited node is pointed at its grandparent).
fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let gp = parent[parent[i as usize] as usize];
        parent[i as usize] = gp;
        i = gp;
    }
    i
}

/// Merge the sets of `a` and `b`; the smaller root wins so a root is always its set's smallest label.
fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}

/// 8-connectivity labelling. Returns the label image `[h * w]` (0 = background, 1..=k) and the k components,
/// `components[i].label == i + 1`.
pub fn connected_components(mask: &[u8], w: u32, h: u32) -> (Vec<u32>, Vec<Component>) {
    let (w, h) = (w as usize, h as usize);
    assert_eq!(mask.len(), w * h, "connected_components: mask has {} values, expected {w} x {h}", mask.len());
    let mut labels = vec![0u32; w * h];
    // parent[0] is a dummy so provisional labels start at 1, like the final ones.
    let mut parent: Vec<u32> = vec![0];

    // Pass 1: provisional labels and their equivalences.
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] == 0 {
                continue;
            }
            // Already-visited neighbours: W, NW, N, NE.
            let mut nb = [0u32; 4];
            if x > 0 {
                nb[0] = labels[y * w + x - 1];
            }
            if y > 0 {
                let up = (y - 1) * w;
                if x > 0 {
                    nb[1] = labels[up + x - 1];
                }
                nb[2] = labels[up + x];
                if x + 1 < w {
                    nb[3] = labels[up + x + 1];
                }
            }
            let min = nb.iter().copied().filter(|&l| l != 0).min();
            let l = match min {
                None => {
                    let l = parent.len() as u32;
                    parent.push(l);
                    l
                }
                Some(m) => {
                    for &n in nb.iter().filter(|&&l| l != 0 && l != m) {
                        union(&mut parent, m, n);
                    }
                    m
                }
            };
            labels[y * w + x] = l;
        }
    }

    // Pass 2: root -> final label in first-met raster order, and the component statistics.
    let mut final_of_root = vec![0u32; parent.len()];
    let mut comps: Vec<Component> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if labels[i] == 0 {
                continue;
            }
            let root = find(&mut parent, labels[i]) as usize;
            if final_of_root[root] == 0 {
                comps.push(Component {
                    label: comps.len() as u32 + 1,
                    area: 0,
                    bbox: BBox { x0: x as u32, y0: y as u32, x1: x as u32 + 1, y1: y as u32 + 1 },
                });
                final_of_root[root] = comps.len() as u32;
            }
            let l = final_of_root[root];
            labels[i] = l;
            let c = &mut comps[l as usize - 1];
            c.area += 1;
            // y only grows in raster order, so y0 is already right; x can go either way.
            c.bbox.x0 = c.bbox.x0.min(x as u32);
            c.bbox.x1 = c.bbox.x1.max(x as u32 + 1);
            c.bbox.y1 = y as u32 + 1;
        }
    }
    (labels, comps)
}

/// Keep only the largest 8-connected component (ties: the first in raster order); it is written as 1, all else 0.
/// An empty mask stays empty.
pub fn keep_largest(mask: &mut [u8], w: u32, h: u32) {
    let (labels, comps) = connected_components(mask, w, h);
    // max_by_key returns the last maximum; reversing makes ties go to the smallest label.
    let Some(best) = comps.iter().rev().max_by_key(|c| c.area).map(|c| c.label) else { return };
    for (m, &l) in mask.iter_mut().zip(&labels) {
        *m = u8::from(l == best);
    }
}

/// Box of every nonzero pixel (= the union of all components' boxes); None for an empty mask.
pub fn union_bbox(mask: &[u8], w: u32, h: u32) -> Option<BBox> {
    let (wu, hu) = (w as usize, h as usize);
    assert_eq!(mask.len(), wu * hu, "union_bbox: mask has {} values, expected {w} x {h}", mask.len());
    let mut b: Option<BBox> = None;
    for (y, row) in mask.chunks_exact(wu.max(1)).enumerate().take(hu) {
        // First and last fluke pixel of the row, if any.
        let Some(first) = row.iter().position(|&v| v != 0) else { continue };
        let last = row.iter().rposition(|&v| v != 0).unwrap_or(first);
        let r = BBox { x0: first as u32, y0: y as u32, x1: last as u32 + 1, y1: y as u32 + 1 };
        b = Some(b.map_or(r, |b| b.union(&r)));
    }
    b
}
