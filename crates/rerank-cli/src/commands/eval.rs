//! `rerank eval`: retrieval quality on a BEIR-format set — first stage vs. reranked.
//!
//! Indexes the corpus with each document embedded whole (or reuses `--index DIR`), runs each
//! requested first stage to depth `--top-k`, reranks the top `--rerank-depth` with the
//! cross-encoder (ranks below it keep their first-stage order) and reports nDCG@10, MRR@10,
//! Recall@10 and Recall@100 (pytrec_eval definitions, averaged over every judged query) with
//! timings. Cross-encoder predictions are cached per (query, document) within one invocation,
//! so a pair retrieved by several first stages is scored once. `--fusion` adds, per first
//! stage, one run per fusion of the first stage's and the reranker's scores (named
//! `<first stage>+rerank+<fusion>`), over the same predictions.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rerank_engine::Embedder;
use rerank_retrieval::eval::{
    self, BeirDataset, EvalSettings, MetricsSummary, PairScorer, RunReport,
};
use rerank_retrieval::index::Index;
use rerank_retrieval::pipeline::IndexingReport;
use rerank_retrieval::{build_retriever, Fusion, Retriever, RetrieverKind};
use serde_json::{json, Value};

use super::index::open_with_embedder;
use super::search::{parse_fusion, DEFAULT_RERANKER};
use super::{RerankerFlags, RetrieverArg};
use crate::output;

/// Documents of the first stage that the reranker reorders when `--rerank-depth` is not given.
pub const DEFAULT_RERANK_DEPTH: usize = 50;

#[derive(clap::Args)]
pub struct Args {
    /// BEIR corpus.jsonl: {"_id", "title", "text"} per line.
    #[arg(long)]
    corpus: PathBuf,
    /// BEIR queries.jsonl: {"_id", "text"} per line.
    #[arg(long)]
    queries: PathBuf,
    /// BEIR qrels TSV: `query-id corpus-id score` lines after a header line.
    #[arg(long)]
    qrels: PathBuf,
    /// Index directory: reused if it exists (documents it lacks are added), created otherwise
    /// and kept. Default: a temporary index, removed at the end.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Bi-encoder: a folder or hub id. Default: the index's own embedder, or all-MiniLM-L6-v2.
    #[arg(long)]
    embedder: Option<String>,
    /// First stage(s), comma-separated: dense, bm25, hybrid (reciprocal-rank fusion).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "dense")]
    retriever: Vec<RetrieverArg>,
    /// First-stage depth: documents retrieved per query (at most the corpus size; a larger
    /// value is clamped).
    #[arg(long, default_value_t = 100)]
    top_k: usize,
    /// Cross-encoder: a folder or hub id.
    #[arg(long, default_value = DEFAULT_RERANKER)]
    reranker: String,
    /// How many first-stage documents the cross-encoder reorders (capped at --top-k); the
    /// rest keep their first-stage order below them.
    #[arg(long, default_value_t = DEFAULT_RERANK_DEPTH)]
    rerank_depth: usize,
    /// Evaluate the first stage only.
    #[arg(long)]
    no_rerank: bool,
    /// Fusion(s) of the reranker's and the first stage's scores to evaluate as well,
    /// comma-separated: `rrf` (1/(60 + first-stage rank) + 1/(60 + rerank rank)) or
    /// `linear:ALPHA` (ALPHA·minmax(logit) + (1 − ALPHA)·minmax(first-stage score) over the
    /// reranked candidates, 0 ≤ ALPHA ≤ 1); `none` (the default) adds nothing. Each is one more
    /// run per first stage, over the same reranker predictions.
    #[arg(long, value_delimiter = ',', default_value = "none", value_parser = parse_fusion)]
    fusion: Vec<Fusion>,
    /// Approximate (HNSW) dense search instead of the exact search used by default.
    #[arg(long)]
    hnsw: bool,
    /// Also report the metrics per value of this key of the queries' "metadata" (e.g. kind).
    #[arg(long)]
    group_by: Option<String>,
    /// Write one JSON line per (first stage, query): ids of the top 10 before and after
    /// reranking and the query's metrics.
    #[arg(long)]
    per_query: Option<PathBuf>,
    /// Print one JSON object (settings, metrics, timings) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: RerankerFlags,
    /// `chunk`: the reranker scores each whole document by its best window instead of its
    /// first max-length tokens.
    #[command(flatten)]
    long: super::long_documents::LongDocumentFlags,
}

fn retriever_name(kind: RetrieverArg) -> &'static str {
    RetrieverKind::from(kind).name()
}

fn progress_bar(len: usize, what: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} {{per_sec}} eta {{eta}}"
        ))
        .expect("valid template"),
    )
}

/// Opens or creates the index and adds the corpus documents it lacks.
fn prepare_index(
    args: &Args,
    dataset: &BeirDataset,
    dir: &Path,
    hide_progress: bool,
) -> Result<(Index, Arc<Embedder>, IndexingReport, f64)> {
    let (mut index, embedder) = open_with_embedder(dir, args.embedder.as_deref())?;
    let start = Instant::now();
    let bar = progress_bar(dataset.corpus.len(), "embedding corpus", hide_progress);
    let report = eval::index_corpus(
        &mut index,
        &embedder,
        &dataset.corpus,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    Ok((
        index,
        Arc::new(embedder),
        report,
        start.elapsed().as_secs_f64(),
    ))
}

fn first_stage(
    kind: RetrieverArg,
    index: &Arc<Index>,
    embedder: &Arc<Embedder>,
    exact: bool,
) -> Result<Box<dyn Retriever>> {
    Ok(build_retriever(
        kind.into(),
        index.clone(),
        Some(embedder.clone()),
        exact,
    )?)
}

pub fn run(args: Args) -> Result<()> {
    if args.top_k == 0 || args.rerank_depth == 0 {
        bail!("--top-k and --rerank-depth must be at least 1");
    }
    let mut fusions: Vec<Fusion> = Vec::new();
    for f in args.fusion.iter().filter(|f| !f.is_none()) {
        if !fusions.contains(f) {
            fusions.push(*f);
        }
    }
    if args.no_rerank && !fusions.is_empty() {
        bail!("--fusion combines the reranker with the first stage: it needs reranking (drop --no-rerank)");
    }
    let long_documents = args.long.mode()?;
    let mut kinds = args.retriever.clone();
    kinds.dedup_by_key(|k| retriever_name(*k));
    let hide_progress = args.json || !std::io::stderr().is_terminal();
    let dataset = BeirDataset::load(&args.corpus, &args.queries, &args.qrels)?;
    let tmp;
    let dir = match &args.index {
        Some(dir) => dir.clone(),
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary index directory")?;
            tmp.path().join("index")
        }
    };
    let (index, embedder, indexing, indexing_secs) =
        prepare_index(&args, &dataset, &dir, hide_progress)?;
    let index = Arc::new(index);
    let model = if args.no_rerank {
        None
    } else {
        Some(args.model.load(&args.reranker)?)
    };
    let mut scorer = model
        .as_ref()
        .map(|m| PairScorer::new(m).with_long_documents(long_documents));
    let settings = EvalSettings {
        top_k: args.top_k,
        rerank_depth: args.rerank_depth,
    };
    let mut reports = Vec::new();
    for &kind in &kinds {
        let retriever = first_stage(kind, &index, &embedder, !args.hnsw)?;
        let what = if scorer.is_some() {
            format!("{} + rerank", retriever_name(kind))
        } else {
            retriever_name(kind).to_string()
        };
        let bar = progress_bar(dataset.queries.len(), &what, hide_progress);
        let report = eval::evaluate_fused(
            retriever.as_ref(),
            scorer.as_mut(),
            &dataset.queries,
            &dataset.qrels,
            settings,
            &fusions,
            &mut |done, _| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        reports.push(report);
    }
    if let Some(path) = &args.per_query {
        write_per_query(path, &reports)?;
    }
    let groups = args
        .group_by
        .as_deref()
        .map(|key| group_metrics(&reports, key));
    let mut out = output::stdout();
    if args.json {
        let value = json!({
            "dataset": {
                "corpus": args.corpus, "queries": args.queries, "qrels": args.qrels,
                "documents": dataset.corpus.len(), "judged_queries": dataset.queries.len(),
            },
            "settings": {
                "embedder": index.embedder().name,
                "reranker": model.as_ref().map(|_| args.reranker.clone()),
                "top_k": args.top_k,
                "rerank_depth": model.as_ref().map(|_| args.rerank_depth.min(args.top_k)),
                "fusion": fusions.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                "long_documents": model.as_ref().map(|_| args.long.name()),
                "max_chunks_per_doc": match long_documents {
                    rerank_engine::LongDocuments::Chunk { max_chunks_per_doc } if model.is_some() => Some(max_chunks_per_doc),
                    _ => None,
                },
                "dense_search": if args.hnsw { "hnsw" } else { "exact" },
                "index": args.index,
            },
            "indexing": {
                "documents_added": indexing.added, "documents_present": indexing.skipped_existing,
                "embed_secs": indexing.embed_secs, "write_secs": indexing.write_secs,
                "total_secs": indexing_secs,
            },
            "metrics": metrics_table(&reports),
            "metrics_by_group": groups,
            "runs": reports,
        });
        output::json_line(&mut out, &value)?;
    } else {
        print_table(&mut out, &args, &dataset, &reports, groups.as_ref())?;
        print_timings(&mut out, &indexing, indexing_secs, &reports)?;
    }
    out.flush()?;
    Ok(())
}

/// `{"dense": {...}, "dense+rerank": {...}, ...}` as in sotu-ict's reference.json.
fn metrics_table(reports: &[RunReport]) -> BTreeMap<String, Value> {
    let mut table = BTreeMap::new();
    for r in reports {
        table.insert(r.retriever.clone(), json!(r.first_stage));
        if let Some(m) = &r.reranked {
            table.insert(format!("{}+rerank", r.retriever), json!(m));
        }
        for f in &r.fused {
            table.insert(
                format!("{}+rerank+{}", r.retriever, f.fusion),
                json!(f.metrics),
            );
        }
    }
    table
}

/// Metrics per value of the queries' `metadata[key]` (missing values group under `""`).
fn group_metrics(reports: &[RunReport], key: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for r in reports {
        let mut first: BTreeMap<String, MetricsSummary> = BTreeMap::new();
        let mut reranked: BTreeMap<String, MetricsSummary> = BTreeMap::new();
        let mut fused: BTreeMap<(String, String), MetricsSummary> = BTreeMap::new();
        for q in &r.per_query {
            let group = match q.query_metadata.get(key) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            first.entry(group.clone()).or_default().add(&q.first_stage);
            for f in &q.fused {
                fused
                    .entry((group.clone(), f.fusion.clone()))
                    .or_default()
                    .add(&f.metrics);
            }
            if let Some(m) = &q.reranked {
                reranked.entry(group).or_default().add(m);
            }
        }
        for (group, s) in first {
            let g = out.entry(group.clone()).or_default();
            g.insert(r.retriever.clone(), json!(s.mean()));
            g.insert("queries".into(), json!(s.count()));
            if let Some(s) = reranked.get(&group) {
                g.insert(format!("{}+rerank", r.retriever), json!(s.mean()));
            }
            for f in &r.fused {
                if let Some(s) = fused.get(&(group.clone(), f.fusion.clone())) {
                    g.insert(
                        format!("{}+rerank+{}", r.retriever, f.fusion),
                        json!(s.mean()),
                    );
                }
            }
        }
    }
    out
}

fn write_per_query(path: &Path, reports: &[RunReport]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = BufWriter::new(file);
    for r in reports {
        for q in &r.per_query {
            let mut line = serde_json::to_value(q)?;
            line.as_object_mut()
                .expect("a struct serializes to an object")
                .insert("retriever".into(), json!(r.retriever));
            output::json_line(&mut w, &line)?;
        }
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn print_table(
    out: &mut impl Write,
    args: &Args,
    dataset: &BeirDataset,
    reports: &[RunReport],
    groups: Option<&BTreeMap<String, BTreeMap<String, Value>>>,
) -> Result<()> {
    let depth = args.rerank_depth.min(args.top_k);
    write!(
        out,
        "{} judged queries, {} documents; first stage top {}",
        dataset.queries.len(),
        dataset.corpus.len(),
        args.top_k
    )?;
    if args.no_rerank {
        writeln!(out)?;
    } else {
        write!(out, ", top {depth} reranked by {}", args.reranker)?;
        if let Ok(rerank_engine::LongDocuments::Chunk { max_chunks_per_doc }) = args.long.mode() {
            write!(
                out,
                " (long documents: best of at most {max_chunks_per_doc} windows)"
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    // Fused runs have longer names (`hybrid+rerank+linear:0.5`).
    let w = if reports.iter().any(|r| !r.fused.is_empty()) {
        26
    } else {
        16
    };
    writeln!(
        out,
        "{:<w$} {:>8} {:>8} {:>10} {:>11}",
        "run", "nDCG@10", "MRR@10", "Recall@10", "Recall@100"
    )?;
    let row = |out: &mut dyn Write, name: &str, m: &eval::Metrics| -> std::io::Result<()> {
        writeln!(
            out,
            "{name:<w$} {:>8.4} {:>8.4} {:>10.4} {:>11.4}",
            m.ndcg_10, m.mrr_10, m.recall_10, m.recall_100
        )
    };
    for r in reports {
        row(out, &r.retriever, &r.first_stage)?;
        if let Some(m) = &r.reranked {
            row(out, &format!("{}+rerank", r.retriever), m)?;
            let delta = m.ndcg_10 - r.first_stage.ndcg_10;
            writeln!(
                out,
                "{:<w$} nDCG@10 {delta:+.4}: reranking {} the first stage",
                "",
                if delta > 0.0 {
                    "beats"
                } else {
                    "does not beat"
                }
            )?;
        }
        for f in &r.fused {
            row(
                out,
                &format!("{}+rerank+{}", r.retriever, f.fusion),
                &f.metrics,
            )?;
            let delta = f.metrics.ndcg_10 - r.first_stage.ndcg_10;
            writeln!(
                out,
                "{:<w$} nDCG@10 {delta:+.4}: {} fusion {} the first stage",
                "",
                f.fusion,
                if delta > 0.0 {
                    "beats"
                } else {
                    "does not beat"
                }
            )?;
        }
    }
    if let Some(groups) = groups {
        let key = args.group_by.as_deref().unwrap_or_default();
        writeln!(out, "\nnDCG@10 by query {key}:")?;
        for (group, runs) in groups {
            let cells: Vec<String> = runs
                .iter()
                .filter(|(name, _)| name.as_str() != "queries")
                .map(|(name, m)| format!("{name} {:.4}", m["nDCG@10"].as_f64().unwrap_or(0.0)))
                .collect();
            writeln!(
                out,
                "  {:<12} ({} queries): {}",
                if group.is_empty() { "(none)" } else { group },
                runs.get("queries").and_then(Value::as_u64).unwrap_or(0),
                cells.join(", ")
            )?;
        }
    }
    Ok(())
}

fn print_timings(
    out: &mut impl Write,
    indexing: &IndexingReport,
    indexing_secs: f64,
    reports: &[RunReport],
) -> Result<()> {
    writeln!(out)?;
    if indexing.added > 0 {
        writeln!(
            out,
            "indexing: {} documents embedded in {:.1} s ({:.1} documents/s), {:.1} s in total",
            indexing.added,
            indexing.embed_secs,
            indexing.added as f64 / indexing.embed_secs.max(1e-9),
            indexing_secs
        )?;
    } else {
        writeln!(
            out,
            "indexing: reused the index ({} documents present)",
            indexing.skipped_existing
        )?;
    }
    for r in reports {
        let t = &r.timings;
        write!(
            out,
            "{}: first stage {:.2} ms/query",
            r.retriever, t.first_stage_ms_per_query
        )?;
        if r.reranked.is_some() {
            write!(
                out,
                "; rerank {:.1} ms/query ({} pairs scored, {:.1} pairs/s",
                t.rerank_ms_per_query, t.pairs_scored, t.pairs_per_sec
            )?;
            if t.pairs_reused > 0 {
                write!(out, "; {} pairs reused from earlier runs", t.pairs_reused)?;
            }
            write!(out, ")")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
