//! 64-byte aligned `f32` buffers for packed operands and per-thread scratch space.

/// A zero-initialised `f32` buffer whose first element sits on a 64-byte (cache-line, one
/// AVX-512 register) boundary. It only grows ([`AlignedVec::ensure`]).
#[derive(Debug, Clone, Default)]
pub struct AlignedVec {
    raw: Vec<f32>,
    offset: usize,
    len: usize,
}

/// `f32`s per 64 bytes.
const ALIGN_F32: usize = 16;

impl AlignedVec {
    /// A buffer of `len` zeros.
    pub fn zeros(len: usize) -> Self {
        let raw = vec![0f32; len + ALIGN_F32];
        let misalign = (raw.as_ptr() as usize / std::mem::size_of::<f32>()) % ALIGN_F32;
        let offset = (ALIGN_F32 - misalign) % ALIGN_F32;
        AlignedVec { raw, offset, len }
    }

    /// Makes the buffer hold at least `len` elements; contents are unspecified afterwards.
    pub fn ensure(&mut self, len: usize) {
        if self.len < len {
            *self = AlignedVec::zeros(len.next_power_of_two());
        }
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.raw[self.offset..self.offset + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.raw[self.offset..self.offset + self.len]
    }
}

/// A raw pointer that may cross threads, for tasks that write disjoint parts of one buffer.
/// Every use site states why its writes do not overlap.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);

impl SendPtr {
    /// The pointer. (A method, so that closures capture the whole `SendPtr` — which is
    /// `Sync` — rather than its raw-pointer field.)
    #[inline]
    pub fn get(&self) -> *mut f32 {
        self.0
    }
}

// SAFETY: `SendPtr` is only a pointer value; the code that dereferences it guarantees that
// concurrent tasks touch disjoint elements and that the buffer outlives them (scoped rayon
// calls).
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_sized() {
        for len in [0, 1, 17, 1000] {
            let mut b = AlignedVec::zeros(len);
            assert_eq!(b.as_slice().len(), len);
            assert_eq!(b.as_mut_slice().as_ptr() as usize % 64, 0);
            b.ensure(len + 5);
            assert!(b.len() >= len + 5);
            assert_eq!(b.as_slice().as_ptr() as usize % 64, 0);
        }
    }
}
