//! Intel AMX-INT8 for the int8 GEMM: availability and the 32×32 block kernel (`tdpbusd`,
//! u8 activations × s8 weights, i32 sums).
//!
//! The tiles are configured exactly as for the bf16 kernel ([`crate::amx`]: eight tiles of
//! 16 rows × 64 bytes, taken per task with [`crate::amx::TileGuard`]): `tmm0..tmm3` hold the
//! 32×32 i32 output block as 2×2 tiles of 16×16 i32, `tmm4`/`tmm5` the two 16-row halves of
//! a 32-row `A` slice (16 rows × 64 u8), `tmm6`/`tmm7` two 16-column `B` panels in VNNI
//! order (16 rows of k-quads × 16 columns × 4 s8) — the layouts of [`crate::int8`]. One
//! `tdpbusd` does 16·16·64 = 16384 multiply-adds.
//!
//! Written with `asm!` (no stable AMX intrinsics), so it is compiled on every x86-64 CPU;
//! it only runs where [`available`] says so.

#[cfg(target_arch = "x86_64")]
use std::arch::asm;
use std::sync::OnceLock;

static AVAILABLE: OnceLock<bool> = OnceLock::new();

/// Whether this process may run AMX-INT8: the CPU reports `amx-int8` (CPUID leaf 7, EDX bit
/// 25) and [`crate::amx::available`] holds (`amx-tile`, `amx-bf16`, and Linux granted the
/// tile-data permission; every CPU with AMX-INT8 so far also has AMX-BF16).
pub fn available() -> bool {
    *AVAILABLE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if !crate::amx::available() {
                return false;
            }
            let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
            leaf7.edx & (1 << 25) != 0
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `c[32 × 32] = A[32 × k_pad] · B[k_pad × 32]` in i32: `a` 32 rows of `k_pad` u8 at stride
/// `lda` bytes, `b0`/`b1` two 16-column panels of `k_pad / 4` VNNI rows of 64 s8, `c` 32 rows
/// of 32 i32 at stride 32.
///
/// # Safety
/// A [`crate::amx::TileGuard`] is live on this thread and [`available`] returned `true`;
/// `k_pad % 64 == 0`; the pointers are valid for the elements named above (`a`, `b` reads,
/// `c` writes).
#[cfg(target_arch = "x86_64")]
#[inline]
pub unsafe fn block_32x32(
    a: *const u8,
    lda: usize,
    b0: *const i8,
    b1: *const i8,
    k_pad: usize,
    c: *mut i32,
) {
    debug_assert!(k_pad.is_multiple_of(64));
    // SAFETY: tiles configured (caller's contract); tilezero touches no memory.
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        )
    };
    for s in 0..k_pad / 64 {
        // SAFETY: each tileloadd reads 16 rows of 64 bytes: A rows 0..16 / 16..32 at byte
        // columns 64s..64s+64, and the 16 VNNI rows 16s..16s+16 of each B panel
        // (contiguous, stride 64 bytes) — all inside the caller's buffers.
        unsafe {
            asm!(
                "tileloadd tmm4, [{a0} + {sa}]",
                "tileloadd tmm6, [{p0} + {sb}]",
                "tdpbusd tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{p1} + {sb}]",
                "tdpbusd tmm1, tmm4, tmm7",
                "tileloadd tmm5, [{a1} + {sa}]",
                "tdpbusd tmm2, tmm5, tmm6",
                "tdpbusd tmm3, tmm5, tmm7",
                a0 = in(reg) a.add(s * 64),
                a1 = in(reg) a.add(16 * lda + s * 64),
                sa = in(reg) lda,
                p0 = in(reg) b0.add(s * 1024),
                p1 = in(reg) b1.add(s * 1024),
                sb = in(reg) 64usize,
                options(nostack, readonly)
            )
        };
    }
    // SAFETY: c holds 32 rows of 32 i32 at stride 32 (caller's contract); each tile stores
    // 16 rows × 64 bytes into its quarter.
    unsafe {
        asm!(
            "tilestored [{c00} + {sc}], tmm0",
            "tilestored [{c01} + {sc}], tmm1",
            "tilestored [{c10} + {sc}], tmm2",
            "tilestored [{c11} + {sc}], tmm3",
            c00 = in(reg) c,
            c01 = in(reg) c.add(16),
            c10 = in(reg) c.add(16 * 32),
            c11 = in(reg) c.add(16 * 32 + 16),
            sc = in(reg) 128usize,
            options(nostack)
        )
    };
}

#[cfg(all(test, target_arch = "x86_64"))]
mod timing_scratch {
    #[test]
    #[ignore]
    fn amx_block_timing() {
        if !super::available() {
            return;
        }
        for k_pad in [128usize, 256, 512, 768, 3072] {
            let a = vec![1u8; 32 * k_pad];
            let b = vec![1i8; 32 * k_pad];
            let mut c = vec![0i32; 1024];
            let _g = unsafe { crate::amx::TileGuard::new() };

            let n = 200_000;
            let t = std::time::Instant::now();
            for _ in 0..n {
                unsafe {
                    super::block_32x32(
                        a.as_ptr(),
                        k_pad,
                        b.as_ptr(),
                        b.as_ptr().add(16 * k_pad),
                        k_pad,
                        c.as_mut_ptr(),
                    )
                };
            }
            let dt = t.elapsed().as_secs_f64();
            let macs = n as f64 * 1024.0 * k_pad as f64;
            eprintln!(
                "k {k_pad} block: {:.1} ns/block, {:.0} GOPS",
                dt / n as f64 * 1e9,
                2.0 * macs / dt / 1e9
            );
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod timing_scratch2 {
    use std::arch::asm;
    #[test]
    #[ignore]
    fn amx_peak_timing() {
        if !super::available() {
            return;
        }
        let _g = unsafe { crate::amx::TileGuard::new() };
        let a = vec![1u8; 4096];
        unsafe {
            asm!("tileloadd tmm4, [{a} + {s}]", "tileloadd tmm5, [{a} + {s}]", "tileloadd tmm6, [{a} + {s}]", "tileloadd tmm7, [{a} + {s}]", a = in(reg) a.as_ptr(), s = in(reg) 64usize)
        };
        let n = 1_000_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            unsafe {
                asm!(
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm7",
                    "tdpbusd tmm2, tmm5, tmm6",
                    "tdpbusd tmm3, tmm5, tmm7",
                    options(nostack, nomem)
                )
            };
        }
        let dt = t.elapsed().as_secs_f64();
        eprintln!(
            "tdpbusd: {:.2} ns each, {:.0} GOPS",
            dt / (4.0 * n as f64) * 1e9,
            4.0 * n as f64 * 16384.0 * 2.0 / dt / 1e9
        );
        let t = std::time::Instant::now();
        for _ in 0..n {
            unsafe {
                asm!(
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    options(nostack, nomem)
                )
            };
        }
        let dt = t.elapsed().as_secs_f64();
        eprintln!(
            "tdpbf16ps: {:.2} ns each, {:.0} GFLOPS",
            dt / (4.0 * n as f64) * 1e9,
            4.0 * n as f64 * 8192.0 * 2.0 / dt / 1e9
        );
        let t = std::time::Instant::now();
        for _ in 0..n {
            unsafe {
                asm!("tileloadd tmm4, [{a} + {s}]", "tdpbusd tmm0, tmm4, tmm6", "tdpbusd tmm1, tmm4, tmm7", "tileloadd tmm5, [{a} + {s}]", "tdpbusd tmm2, tmm5, tmm6", "tdpbusd tmm3, tmm5, tmm7", a = in(reg) a.as_ptr(), s = in(reg) 64usize, options(nostack))
            };
        }
        let dt = t.elapsed().as_secs_f64();
        eprintln!(
            "2 loads + 4 tdpbusd: {:.2} ns per tdp, {:.0} GOPS",
            dt / (4.0 * n as f64) * 1e9,
            4.0 * n as f64 * 16384.0 * 2.0 / dt / 1e9
        );

        for (label, sa, sbb, span) in [
            ("4 loads hot stride64", 64usize, 64usize, 0usize),
            ("4 loads A stride 768 hot", 768, 64, 0),
            ("4 loads streaming k768", 768, 64, 1),
        ] {
            let a = vec![1u8; 32 * 768 * 2];
            let b = vec![1u8; 32 * 768 * 2];
            let steps = 12;
            let t = std::time::Instant::now();
            for _ in 0..n / steps {
                for st in 0..steps {
                    let off_a = st * 64 * span;
                    let off_b = st * 1024 * span;
                    unsafe {
                        asm!("tileloadd tmm4, [{a0} + {sa}]", "tileloadd tmm6, [{p0} + {sb}]", "tdpbusd tmm0, tmm4, tmm6", "tileloadd tmm7, [{p1} + {sb}]", "tdpbusd tmm1, tmm4, tmm7", "tileloadd tmm5, [{a1} + {sa}]", "tdpbusd tmm2, tmm5, tmm6", "tdpbusd tmm3, tmm5, tmm7",
                        a0 = in(reg) a.as_ptr().add(off_a), a1 = in(reg) a.as_ptr().add(off_a + 16 * sa), p0 = in(reg) b.as_ptr().add(off_b), p1 = in(reg) b.as_ptr().add(off_b + 16 * 768), sa = in(reg) sa, sb = in(reg) sbb, options(nostack))
                    };
                }
            }
            let dt = t.elapsed().as_secs_f64();
            let cnt = (n / steps * steps) as f64;
            eprintln!(
                "{label}: {:.2} ns per tdp, {:.0} GOPS",
                dt / (4.0 * cnt) * 1e9,
                4.0 * cnt * 16384.0 * 2.0 / dt / 1e9
            );
        }

        for variant in 0..6 {
            let a = vec![1u8; 32 * 768];
            let b = vec![1u8; 32 * 768];
            let mut c = vec![0i32; 1024 * 4];
            let blocks = 100_000;
            let t = std::time::Instant::now();
            for blk in 0..blocks {
                if variant >= 4 {
                    if variant == 4 {
                        unsafe {
                            super::block_32x32(
                                a.as_ptr(),
                                768,
                                b.as_ptr() as *const i8,
                                b.as_ptr().add(16 * 768) as *const i8,
                                768,
                                c.as_mut_ptr(),
                            )
                        };
                    } else {
                        unsafe {
                            super::block_32x32(
                                a.as_ptr(),
                                768,
                                b.as_ptr() as *const i8,
                                b.as_ptr().add(12 * 1024) as *const i8,
                                768,
                                c.as_mut_ptr(),
                            )
                        };
                    }
                    continue;
                }
                if variant != 1 {
                    unsafe {
                        asm!(
                            "tilezero tmm0",
                            "tilezero tmm1",
                            "tilezero tmm2",
                            "tilezero tmm3",
                            options(nostack, nomem)
                        )
                    };
                }
                for st in 0..12 {
                    let off_a = st * 64;
                    let off_b = st * 1024;
                    unsafe {
                        asm!("tileloadd tmm4, [{a0} + {sa}]", "tileloadd tmm6, [{p0} + {sb}]", "tdpbusd tmm0, tmm4, tmm6", "tileloadd tmm7, [{p1} + {sb}]", "tdpbusd tmm1, tmm4, tmm7", "tileloadd tmm5, [{a1} + {sa}]", "tdpbusd tmm2, tmm5, tmm6", "tdpbusd tmm3, tmm5, tmm7",
                        a0 = in(reg) a.as_ptr().add(off_a), a1 = in(reg) a.as_ptr().add(off_a + 16 * 768), p0 = in(reg) b.as_ptr().add(off_b), p1 = in(reg) b.as_ptr().add(off_b + 16 * 768), sa = in(reg) 768usize, sb = in(reg) 64usize, options(nostack))
                    };
                }
                if variant != 2 {
                    let cc = if variant == 3 {
                        unsafe { c.as_mut_ptr().add((blk & 3) * 1024) }
                    } else {
                        c.as_mut_ptr()
                    };
                    unsafe {
                        asm!("tilestored [{c00} + {sc}], tmm0", "tilestored [{c01} + {sc}], tmm1", "tilestored [{c10} + {sc}], tmm2", "tilestored [{c11} + {sc}], tmm3",
                        c00 = in(reg) cc, c01 = in(reg) cc.add(16), c10 = in(reg) cc.add(512), c11 = in(reg) cc.add(528), sc = in(reg) 128usize, options(nostack))
                    };
                }
            }
            let dt = t.elapsed().as_secs_f64();
            eprintln!(
                "variant {variant}: {:.1} ns per block, {:.0} GOPS",
                dt / blocks as f64 * 1e9,
                blocks as f64 * 1024.0 * 768.0 * 2.0 / dt / 1e9
            );
        }
    }
}
