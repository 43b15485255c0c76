//! Numeric precision of the models' linear layers: [`rerank_kernels::Precision`], re-exported
//! unchanged (`rerank_engine::Precision`). It is decided in one place — the linear layers are
//! packed for it at load time ([`rerank_kernels::Linear::new`]) — and `info().compute_dtype`
//! is derived from it ([`Precision::compute_dtype`]).

pub use rerank_kernels::Precision;
