//! How a product's output is cut into parallel tasks: one task grid (row blocks × column
//! ranges) shared by every precision's GEMM driver, and the [`Parallelism`] switch every
//! parallel kernel takes instead of serial/parallel twins.

use std::ops::Range;

use rayon::prelude::*;

/// Whether a kernel may spread its work over rayon's thread pool.
///
/// Both give the same bits: every output element is computed by the same sequence of
/// operations whichever task computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// On the calling thread only, for callers that are already parallel tasks.
    Serial,
    /// On rayon's current pool; products too small to gain from it still run inline.
    #[default]
    Parallel,
}

impl Parallelism {
    /// `Parallel` when `parallel`, else `Serial`.
    pub fn from_flag(parallel: bool) -> Self {
        if parallel {
            Parallelism::Parallel
        } else {
            Parallelism::Serial
        }
    }

    /// Whether work may go to the pool (and the pool has more than one thread).
    pub fn is_parallel(self) -> bool {
        self == Parallelism::Parallel && rayon::current_num_threads() > 1
    }

    /// Runs `task(t)` for `t < tasks`: on rayon's pool when this allows it and there is more
    /// than one task, else in order on the calling thread.
    pub(crate) fn for_each_task(self, tasks: usize, task: impl Fn(usize) + Sync + Send) {
        if !self.is_parallel() || tasks <= 1 {
            (0..tasks).for_each(task);
        } else {
            (0..tasks).into_par_iter().for_each(task);
        }
    }
}

/// Shape of the task grid of one GEMM driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    /// Row blocks are a multiple of this (the kernel's row tile).
    pub row_align: usize,
    /// Largest row block (the packed-`A` block that stays in L2).
    pub max_rows: usize,
    /// Column ranges are made of whole units of this many columns (one packed panel).
    pub col_unit: usize,
    /// Below this many multiply-adds a product runs on the calling thread.
    pub min_parallel_work: usize,
}

impl Grid {
    /// Runs `task(rows, cols)` over a grid covering rows `0..m` × columns `cols` (whose start
    /// is a multiple of `col_unit`): on the calling thread as one task when `par` is serial
    /// or `work` is small, else about two tasks per thread on rayon's pool — row blocks of
    /// at most `max_rows` (a multiple of `row_align`), and the columns split as well when
    /// there are too few row blocks. Every column range but the last ends on a unit boundary.
    pub fn run(
        &self,
        m: usize,
        cols: Range<usize>,
        work: usize,
        par: Parallelism,
        task: impl Fn(Range<usize>, Range<usize>) + Sync,
    ) {
        if m == 0 || cols.is_empty() {
            return;
        }
        let threads = rayon::current_num_threads();
        if !par.is_parallel() || work < self.min_parallel_work {
            task(0..m, cols);
            return;
        }
        let rb = m
            .div_ceil(2 * threads)
            .div_ceil(self.row_align)
            .saturating_mul(self.row_align)
            .clamp(self.row_align, self.max_rows);
        let row_tasks = m.div_ceil(rb);
        let first_unit = cols.start / self.col_unit;
        let units = cols.end.div_ceil(self.col_unit) - first_unit;
        let col_tasks = (2 * threads).div_ceil(row_tasks).clamp(1, units);
        let per_task = units.div_ceil(col_tasks);
        let col_tasks = units.div_ceil(per_task);
        (0..row_tasks * col_tasks).into_par_iter().for_each(|t| {
            let (ri, ci) = (t / col_tasks, t % col_tasks);
            let r0 = ri * rb;
            let c0 = (first_unit + ci * per_task) * self.col_unit;
            let c1 = ((first_unit + (ci + 1) * per_task) * self.col_unit).min(cols.end);
            task(r0..(r0 + rb).min(m), c0..c1);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn tasks_cover_the_output_exactly_once() {
        let grid = Grid {
            row_align: 14,
            max_rows: 168,
            col_unit: 32,
            min_parallel_work: 0,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for (m, cols) in [
            (1usize, 0..5usize),
            (500, 32..1000),
            (29, 0..64),
            (1000, 64..96),
        ] {
            let seen = Mutex::new(vec![0u8; m * cols.end]);
            pool.install(|| {
                grid.run(
                    m,
                    cols.clone(),
                    usize::MAX,
                    Parallelism::Parallel,
                    |r, c| {
                        assert!(c.start.is_multiple_of(32));
                        let mut s = seen.lock().unwrap();
                        for i in r {
                            for j in c.clone() {
                                s[i * cols.end + j] += 1;
                            }
                        }
                    },
                )
            });
            let s = seen.into_inner().unwrap();
            for i in 0..m {
                for j in 0..cols.end {
                    let want = u8::from(cols.contains(&j));
                    assert_eq!(s[i * cols.end + j], want, "m {m} ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn serial_is_one_task() {
        let grid = Grid {
            row_align: 32,
            max_rows: 128,
            col_unit: 32,
            min_parallel_work: 0,
        };
        let calls = Mutex::new(Vec::new());
        grid.run(1000, 0..300, usize::MAX, Parallelism::Serial, |r, c| {
            calls.lock().unwrap().push((r, c))
        });
        assert_eq!(calls.into_inner().unwrap(), vec![(0..1000, 0..300)]);
    }
}
