//! 64-byte aligned buffers (`f32`, and bf16 bit patterns as `u16`) for packed operands and
//! per-thread scratch space.

/// A zero-initialised buffer of `T` whose first element sits on a 64-byte (cache-line, one
/// AVX-512 register, one AMX tile row) boundary. It only grows ([`AlignedBuf::ensure`]).
#[derive(Debug, Clone, Default)]
pub struct AlignedBuf<T> {
    raw: Vec<T>,
    offset: usize,
    len: usize,
}

/// An aligned `f32` buffer.
pub type AlignedVec = AlignedBuf<f32>;

/// An aligned buffer of bf16 bit patterns.
pub type AlignedBf16 = AlignedBuf<u16>;

/// Bytes of the alignment.
const ALIGN_BYTES: usize = 64;

impl<T: Copy + Default> AlignedBuf<T> {
    /// Elements per 64 bytes.
    const ALIGN: usize = ALIGN_BYTES / std::mem::size_of::<T>();

    /// A buffer of `len` zeros.
    pub fn zeros(len: usize) -> Self {
        let raw = vec![T::default(); len + Self::ALIGN];
        let misalign = (raw.as_ptr() as usize / std::mem::size_of::<T>()) % Self::ALIGN;
        let offset = (Self::ALIGN - misalign) % Self::ALIGN;
        AlignedBuf { raw, offset, len }
    }

    /// Makes the buffer hold at least `len` elements; contents are unspecified afterwards.
    pub fn ensure(&mut self, len: usize) {
        if self.len < len {
            *self = Self::zeros(len.next_power_of_two());
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

    pub fn as_slice(&self) -> &[T] {
        &self.raw[self.offset..self.offset + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
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
