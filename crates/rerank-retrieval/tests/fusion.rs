//! Score fusion after reranking (`rerank_retrieval::fusion`): the formulas against values
//! computed by hand, `Fusion::None` identical to plain reranking, and the library's reranker
//! and `evaluate_fused` against a fusion computed here from the same first-stage and
//! reranker lists.

use std::path::PathBuf;
use std::sync::Arc;

use rerank_engine::CrossEncoder;
use rerank_retrieval::eval::{self, EvalSettings, Judgments, Metrics, PairScorer, Qrels, Query};
use rerank_retrieval::fusion::{fuse, Fusion, RRF_K};
use rerank_retrieval::{CrossEncoderReranker, Document, DocumentCompressor, Retriever};

fn tiny_ce() -> Arc<CrossEncoder> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/models/tiny-bert-ce"
    ));
    Arc::new(CrossEncoder::from_dir(dir, Default::default()).unwrap())
}

/// Candidates A, B, C, D in first-stage order with first-stage scores 4, 3.5, 2.5, 0 and
/// reranker logits −1, 3, 1, 3. Reranker ranks (logit descending, ties by first-stage rank):
/// B 1, D 2, C 3, A 4.
const FIRST: [f32; 4] = [4.0, 3.5, 2.5, 0.0];
const LOGITS: [f32; 4] = [-1.0, 3.0, 1.0, 3.0];

fn order(fusion: Fusion) -> Vec<usize> {
    fuse(fusion, &FIRST, &LOGITS)
        .unwrap()
        .iter()
        .map(|f| f.index)
        .collect()
}

#[test]
fn rrf_matches_hand_computed_values() {
    let fused = fuse(Fusion::Rrf, &FIRST, &LOGITS).unwrap();
    // A: 1/61 + 1/64, B: 1/62 + 1/61, C: 1/63 + 1/63, D: 1/64 + 1/62.
    let want = [
        (1, 1.0 / 62.0 + 1.0 / 61.0),
        (0, 1.0 / 61.0 + 1.0 / 64.0),
        (3, 1.0 / 64.0 + 1.0 / 62.0),
        (2, 2.0 / 63.0),
    ];
    assert_eq!(RRF_K, 60.0);
    assert_eq!(fused.len(), 4);
    for (f, (index, score)) in fused.iter().zip(want) {
        assert_eq!(f.index, index, "{fused:?}");
        assert!((f.score - score).abs() < 1e-15, "{fused:?}");
    }
    let rerank_ranks: Vec<usize> = fused.iter().map(|f| f.rerank_rank).collect();
    assert_eq!(rerank_ranks, [1, 4, 2, 3]);
}

#[test]
fn linear_matches_hand_computed_values_and_breaks_ties_by_rerank_rank() {
    // minmax(logit): A 0, B 1, C 0.5, D 1; minmax(first): A 1, B 0.875, C 0.625, D 0.
    // alpha 0.5: A 0.5, B 0.9375, C 0.5625, D 0.5 → B, C, then the tie A = D: D (rerank #2)
    // before A (rerank #4).
    let fused = fuse(Fusion::linear(0.5).unwrap(), &FIRST, &LOGITS).unwrap();
    let got: Vec<(usize, f64)> = fused.iter().map(|f| (f.index, f.score)).collect();
    assert_eq!(got, [(1, 0.9375), (2, 0.5625), (3, 0.5), (0, 0.5)]);
    // alpha 0.3: A 0.7, B 0.3 + 0.6125, C 0.15 + 0.4375, D 0.3.
    let fused = fuse(Fusion::linear(0.3).unwrap(), &FIRST, &LOGITS).unwrap();
    let want = [(1, 0.9125), (0, 0.7), (2, 0.5875), (3, 0.3)];
    for (f, (index, score)) in fused.iter().zip(want) {
        assert_eq!(f.index, index, "{fused:?}");
        assert!((f.score - score).abs() < 1e-12, "{fused:?}");
    }
    // alpha 1 is the reranker's order, alpha 0 the first stage's.
    assert_eq!(order(Fusion::linear(1.0).unwrap()), [1, 3, 2, 0]);
    assert_eq!(order(Fusion::linear(0.0).unwrap()), [0, 1, 2, 3]);
    assert_eq!(order(Fusion::None), [1, 3, 2, 0]);
    // Equal scores normalise to 1: only the other term decides.
    let flat = fuse(Fusion::linear(0.5).unwrap(), &[2.0; 4], &LOGITS).unwrap();
    let got: Vec<(usize, f64)> = flat.iter().map(|f| (f.index, f.score)).collect();
    assert_eq!(got, [(1, 1.0), (3, 1.0), (2, 0.75), (0, 0.5)]);
    assert!(Fusion::linear(1.01).is_err() && Fusion::linear(f64::NAN).is_err());
}

fn docs(texts: &[&str]) -> Vec<Document> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document {
            id: format!("d{i}"),
            text: t.to_string(),
            metadata: Default::default(),
            // Descending first-stage scores, as a retriever returns them.
            score: 1.0 - i as f32 * 0.1,
        })
        .collect()
}

const QUERY: &str = "what did the president say about the economy";
const TEXTS: [&str; 6] = [
    "The economy grew and jobs came back.",
    "We will fight inflation by lowering costs.",
    "Ukraine is defending its freedom.",
    "Cancer research gets new funding.",
    "Roads and bridges will be rebuilt.",
    "The president spoke about wages and the middle class.",
];

#[test]
fn reranker_without_fusion_is_plain_reranking_bit_for_bit() {
    let model = tiny_ce();
    let reranker = CrossEncoderReranker::new(model.clone(), 4);
    assert!(reranker.fusion.is_none());
    let out = reranker.compress_documents(docs(&TEXTS), QUERY).unwrap();
    let ranked = model.rank(QUERY, &TEXTS, 4).unwrap();
    assert_eq!(out.len(), 4);
    for (d, r) in out.iter().zip(&ranked) {
        assert_eq!(d.id, format!("d{}", r.index));
        assert_eq!(d.score.to_bits(), r.score.to_bits());
        assert_eq!(
            d.metadata["relevance_logit"].as_f64().unwrap(),
            f64::from(r.logit)
        );
        assert!(!d.metadata.contains_key("fusion_score"));
    }
}

/// RRF of the input order and the reranker's order, computed here from the model's logits.
fn rrf_by_hand(logits: &[f32]) -> Vec<(usize, f64)> {
    let n = logits.len();
    let mut by_logit: Vec<usize> = (0..n).collect();
    by_logit.sort_by(|&a, &b| logits[b].partial_cmp(&logits[a]).unwrap().then(a.cmp(&b)));
    let mut out: Vec<(usize, usize, f64)> = by_logit
        .iter()
        .enumerate()
        .map(|(r, &i)| {
            (
                i,
                r + 1,
                1.0 / (60.0 + (i + 1) as f64) + 1.0 / (60.0 + (r + 1) as f64),
            )
        })
        .collect();
    out.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap().then(a.1.cmp(&b.1)));
    out.into_iter().map(|(i, _, s)| (i, s)).collect()
}

#[test]
fn reranker_with_rrf_keeps_both_scores_and_fuses_like_by_hand() {
    let model = tiny_ce();
    let reranker = CrossEncoderReranker {
        model: model.clone(),
        top_n: 5,
        fusion: Fusion::Rrf,
        long_documents: rerank_engine::LongDocuments::Truncate,
    };
    let out = reranker.compress_documents(docs(&TEXTS), QUERY).unwrap();
    let pairs: Vec<(&str, &str)> = TEXTS.iter().map(|t| (QUERY, *t)).collect();
    let predictions = model.predict(&pairs).unwrap();
    let logits: Vec<f32> = predictions.iter().map(|p| p.rank_logit()).collect();
    let want = rrf_by_hand(&logits);
    assert_eq!(out.len(), 5);
    for (d, (i, score)) in out.iter().zip(&want) {
        assert_eq!(d.id, format!("d{i}"), "{out:#?}");
        assert!((d.metadata["fusion_score"].as_f64().unwrap() - score).abs() < 1e-12);
        assert_eq!(d.score, *score as f32);
        assert_eq!(d.metadata["fusion"], "rrf");
        let rel = d.metadata["relevance_score"].as_f64().unwrap() as f32;
        assert!((rel - predictions[*i].score).abs() < 1e-5);
    }
}

/// Returns the fixed candidate list whatever the query.
struct Fixed(Vec<Document>);

impl Retriever for Fixed {
    fn retrieve(&self, _query: &str, k: usize) -> rerank_retrieval::Result<Vec<Document>> {
        Ok(self.0.iter().take(k).cloned().collect())
    }
    fn name(&self) -> &'static str {
        "fixed"
    }
}

#[test]
fn evaluate_fused_ranks_like_fusing_the_first_stage_and_reranked_lists() {
    let model = tiny_ce();
    let candidates = docs(&TEXTS);
    let query = Query {
        id: "q".into(),
        text: QUERY.into(),
        metadata: Default::default(),
    };
    let mut judgments = Judgments::new();
    judgments.insert("d5".into(), 1);
    let mut qrels = Qrels::new();
    qrels.insert("q".into(), judgments.clone());
    let mut scorer = PairScorer::new(&model);
    let fusions = [
        Fusion::Rrf,
        Fusion::linear(0.0).unwrap(),
        Fusion::linear(1.0).unwrap(),
    ];
    // Depth 5 of 6: the sixth candidate stays last in every run.
    let settings = EvalSettings {
        top_k: 6,
        rerank_depth: 5,
    };
    let report = eval::evaluate_fused(
        &Fixed(candidates.clone()),
        Some(&mut scorer),
        std::slice::from_ref(&query),
        &qrels,
        settings,
        &fusions,
        &mut |_, _| {},
    )
    .unwrap();
    let q = &report.per_query[0];
    assert_eq!(q.fused.len(), 3);
    let pairs: Vec<(&str, &str)> = TEXTS[..5].iter().map(|t| (QUERY, *t)).collect();
    let logits: Vec<f32> = model
        .predict(&pairs)
        .unwrap()
        .iter()
        .map(|p| p.rank_logit())
        .collect();
    let mut rrf: Vec<String> = rrf_by_hand(&logits)
        .iter()
        .map(|(i, _)| format!("d{i}"))
        .collect();
    rrf.push("d5".into());
    assert_eq!(q.fused[0].fusion, "rrf");
    assert_eq!(q.fused[0].top10, rrf);
    assert_eq!(q.fused[0].metrics, Metrics::of_run(&rrf, &judgments));
    // linear:0 is the first stage's order, linear:1 the reranker's.
    assert_eq!(q.fused[1].fusion, "linear:0");
    assert_eq!(q.fused[1].top10, q.first_stage_top10);
    assert_eq!(q.fused[2].fusion, "linear:1");
    assert_eq!(Some(&q.fused[2].top10), q.reranked_top10.as_ref());
    assert_eq!(report.fused.len(), 3);
    assert_eq!(report.fused[0].metrics, q.fused[0].metrics);
    // Without fusions, no fused run; with fusions but no reranker, an error.
    let plain = eval::evaluate(
        &Fixed(candidates.clone()),
        Some(&mut scorer),
        std::slice::from_ref(&query),
        &qrels,
        settings,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(plain.fused.is_empty() && plain.per_query[0].fused.is_empty());
    assert_eq!(plain.reranked, report.reranked);
    let err = eval::evaluate_fused(
        &Fixed(candidates),
        None,
        std::slice::from_ref(&query),
        &qrels,
        settings,
        &fusions,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("fusion needs a reranker"), "{err}");
}

/// Fusion and long documents together: the fused reranker scores each document by its best
/// window (the engine's `score_documents` in chunk mode, computed independently here), keeps
/// the window in `metadata["best_window"]`, and orders by the fused score of those logits.
#[test]
fn fused_reranker_scores_long_documents_by_their_best_window() {
    let model = tiny_ce();
    let long = format!(
        "{} The economy grew and jobs came back.",
        "Roads and bridges will be rebuilt. ".repeat(120)
    );
    let texts = [TEXTS[2], long.as_str(), TEXTS[3], TEXTS[0]];
    let chunk = rerank_engine::LongDocuments::chunk(20).unwrap();
    let reranker = CrossEncoderReranker {
        model: model.clone(),
        top_n: 4,
        fusion: Fusion::Rrf,
        long_documents: chunk,
    };
    let out = reranker.compress_documents(docs(&texts), QUERY).unwrap();
    let want = model.score_documents(QUERY, &texts, None, chunk).unwrap();
    assert!(
        want[1].window.unwrap().index > 0,
        "the long document needs several windows"
    );
    let logits: Vec<f32> = want.iter().map(|s| s.prediction.rank_logit()).collect();
    let first: Vec<f32> = docs(&texts).iter().map(|d| d.score).collect();
    let order = fuse(Fusion::Rrf, &first, &logits).unwrap();
    assert_eq!(out.len(), 4);
    for (d, f) in out.iter().zip(&order) {
        assert_eq!(d.id, format!("d{}", f.index), "{out:#?}");
        let w = want[f.index].window.unwrap();
        assert_eq!(
            d.metadata["best_window"],
            serde_json::json!({"index": w.index, "char_start": w.char_start, "char_end": w.char_end})
        );
        assert_eq!(
            d.metadata["relevance_score"].as_f64().unwrap() as f32,
            want[f.index].prediction.score
        );
    }
}
