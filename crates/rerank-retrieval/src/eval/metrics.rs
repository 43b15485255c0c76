//! Ranking metrics with the definitions of `trec_eval` / `pytrec_eval` (what BEIR reports).
//!
//! A *run* is a ranked list of document ids, best first, evaluated in the order given (as
//! pytrec_eval does when the run's scores are strictly decreasing; ids are assumed distinct).
//! *Judgments* map a document id to its graded relevance from the qrels; a document is
//! **relevant** when its grade is > 0 (trec_eval's default relevance level 1 for integer grades);
//! unjudged documents and grades ≤ 0 count as grade 0.
//!
//! - nDCG@k (`ndcg_cut_k`): `DCG@k / IDCG@k` with linear gain (the grade itself) and discount
//!   `log2(rank + 1)` for 1-based ranks; IDCG@k is the DCG of the judged grades sorted in
//!   descending order (computed from the qrels, not from the run).
//! - MRR@k (`recip_rank` on the run cut at k): `1 / rank` of the first relevant document in
//!   the top k, 0 if none.
//! - Recall@k (`recall_k`): relevant documents in the top k / all relevant documents of the
//!   query (judged relevant, whether retrieved or not).
//!
//! A query without any relevant document scores 0 on every metric (pytrec_eval returns 0 for
//! it too; averages in [`MetricsSummary::mean`] are over all evaluated queries, including such
//! queries). A run shorter than k is evaluated as is (k larger than the run is not an error).

use std::collections::BTreeMap;

use serde::Serialize;

/// Graded judgments of one query: document id → relevance grade.
pub type Judgments = BTreeMap<String, i32>;

fn gain(judgments: &Judgments, id: &str) -> f64 {
    judgments.get(id).map_or(0.0, |&g| f64::from(g.max(0)))
}

fn relevant_count(judgments: &Judgments) -> usize {
    judgments.values().filter(|&&g| g > 0).count()
}

/// nDCG@k of `run` (ids, best first) against `judgments`, in `[0, 1]`; 0 when the query has no
/// relevant document or `k` is 0.
pub fn ndcg_at_k<S: AsRef<str>>(run: &[S], judgments: &Judgments, k: usize) -> f64 {
    let dcg: f64 = run
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| gain(judgments, id.as_ref()) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<f64> = judgments
        .values()
        .filter(|&&g| g > 0)
        .map(|&g| f64::from(g))
        .collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g / ((i + 2) as f64).log2())
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// Reciprocal rank of the first relevant document within the top `k` of `run`, 0 if none.
pub fn mrr_at_k<S: AsRef<str>>(run: &[S], judgments: &Judgments, k: usize) -> f64 {
    run.iter()
        .take(k)
        .position(|id| gain(judgments, id.as_ref()) > 0.0)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// Fraction of the query's relevant documents found in the top `k` of `run`; 0 when the query
/// has no relevant document.
pub fn recall_at_k<S: AsRef<str>>(run: &[S], judgments: &Judgments, k: usize) -> f64 {
    let total = relevant_count(judgments);
    if total == 0 {
        return 0.0;
    }
    let found = run
        .iter()
        .take(k)
        .filter(|id| gain(judgments, id.as_ref()) > 0.0)
        .count();
    found as f64 / total as f64
}

/// The four metrics `rerank eval` reports, for one query or averaged over queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metrics {
    #[serde(rename = "nDCG@10")]
    pub ndcg_10: f64,
    #[serde(rename = "MRR@10")]
    pub mrr_10: f64,
    #[serde(rename = "Recall@10")]
    pub recall_10: f64,
    #[serde(rename = "Recall@100")]
    pub recall_100: f64,
}

impl Metrics {
    /// nDCG@10, MRR@10, Recall@10 and Recall@100 of one run.
    pub fn of_run<S: AsRef<str>>(run: &[S], judgments: &Judgments) -> Metrics {
        Metrics {
            ndcg_10: ndcg_at_k(run, judgments, 10),
            mrr_10: mrr_at_k(run, judgments, 10),
            recall_10: recall_at_k(run, judgments, 10),
            recall_100: recall_at_k(run, judgments, 100),
        }
    }
}

/// Accumulates per-query [`Metrics`] into means.
#[derive(Debug, Clone, Default)]
pub struct MetricsSummary {
    sum: Metrics,
    count: usize,
}

impl MetricsSummary {
    /// Adds one query's metrics.
    pub fn add(&mut self, m: &Metrics) {
        self.sum.ndcg_10 += m.ndcg_10;
        self.sum.mrr_10 += m.mrr_10;
        self.sum.recall_10 += m.recall_10;
        self.sum.recall_100 += m.recall_100;
        self.count += 1;
    }

    /// Queries added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The mean of each metric over the queries added (all 0 when none was added).
    pub fn mean(&self) -> Metrics {
        if self.count == 0 {
            return Metrics::default();
        }
        let n = self.count as f64;
        Metrics {
            ndcg_10: self.sum.ndcg_10 / n,
            mrr_10: self.sum.mrr_10 / n,
            recall_10: self.sum.recall_10 / n,
            recall_100: self.sum.recall_100 / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judgments(pairs: &[(&str, i32)]) -> Judgments {
        pairs.iter().map(|&(d, g)| (d.to_string(), g)).collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn ndcg_graded_gains_and_log2_discount() {
        // Grades d1=3, d2=2, d3=1, d4=0 (judged non-relevant), x unjudged.
        let j = judgments(&[("d1", 3), ("d2", 2), ("d3", 1), ("d4", 0)]);
        // Run: d3, x, d1, d4, d2.
        // DCG = 1/log2(2) + 0 + 3/log2(4) + 0 + 2/log2(6) = 1 + 1.5 + 2/2.584962500721156
        let run = ["d3", "x", "d1", "d4", "d2"];
        let dcg = 1.0 + 1.5 + 2.0 / 6f64.log2();
        // IDCG = 3/1 + 2/log2(3) + 1/2
        let idcg = 3.0 + 2.0 / 3f64.log2() + 0.5;
        close(ndcg_at_k(&run, &j, 10), dcg / idcg);
        // Hand value: (2.5 + 0.773705614469083) / (3.5 + 1.261859507142915); pytrec_eval
        // 0.5 (`ndcg_cut_10`) gives 0.6874847125494647 for this run and these qrels.
        close(
            ndcg_at_k(&run, &j, 10),
            3.273_705_614_469_083 / 4.761_859_507_142_915,
        );
        assert!((ndcg_at_k(&run, &j, 10) - 0.687_484_712_549_464_7).abs() < 1e-12);
        // Cut at 2: DCG@2 = 1, IDCG@2 = 3 + 2/log2(3).
        close(ndcg_at_k(&run, &j, 2), 1.0 / (3.0 + 2.0 / 3f64.log2()));
        // The ideal run scores 1.
        close(ndcg_at_k(&["d1", "d2", "d3"], &j, 10), 1.0);
    }

    #[test]
    fn ndcg_ideal_comes_from_qrels_not_the_run() {
        // Two relevant documents; the run finds only one, at rank 1.
        let j = judgments(&[("a", 1), ("b", 1)]);
        // DCG = 1, IDCG = 1 + 1/log2(3) = 1.6309297535714575
        close(ndcg_at_k(&["a", "z"], &j, 10), 1.0 / 1.6309297535714575);
    }

    #[test]
    fn single_relevant_document_at_rank_three() {
        let j = judgments(&[("t", 1)]);
        let run = ["a", "b", "t", "c"];
        close(ndcg_at_k(&run, &j, 10), 0.5); // 1/log2(4)
        close(mrr_at_k(&run, &j, 10), 1.0 / 3.0);
        close(recall_at_k(&run, &j, 10), 1.0);
        close(recall_at_k(&run, &j, 2), 0.0);
        close(mrr_at_k(&run, &j, 2), 0.0);
    }

    #[test]
    fn ties_in_judgments_and_equal_grades() {
        // Equal grades are interchangeable: swapping two grade-2 documents changes nothing.
        let j = judgments(&[("a", 2), ("b", 2), ("c", 1)]);
        close(
            ndcg_at_k(&["a", "b", "c"], &j, 10),
            ndcg_at_k(&["b", "a", "c"], &j, 10),
        );
        close(ndcg_at_k(&["b", "a", "c"], &j, 10), 1.0);
        // c first: DCG = 1 + 2/log2(3) + 2/2 = 3.2618595071429148; IDCG = 2 + 2/log2(3) + 0.5.
        close(
            ndcg_at_k(&["c", "a", "b"], &j, 10),
            3.2618595071429148 / 3.7618595071429148,
        );
    }

    #[test]
    fn recall_counts_relevant_not_judged() {
        let j = judgments(&[("a", 1), ("b", 2), ("c", 0), ("d", 1)]);
        // Three relevant (grade > 0); top 2 holds c (judged 0) and b.
        close(recall_at_k(&["c", "b", "a"], &j, 2), 1.0 / 3.0);
        close(recall_at_k(&["c", "b", "a"], &j, 100), 2.0 / 3.0);
        // MRR skips judged non-relevant c.
        close(mrr_at_k(&["c", "b", "a"], &j, 10), 0.5);
    }

    #[test]
    fn query_without_relevant_documents_scores_zero() {
        let j = judgments(&[("a", 0)]);
        let m = Metrics::of_run(&["a", "b"], &j);
        assert_eq!(m, Metrics::default());
        let empty = Judgments::new();
        assert_eq!(Metrics::of_run(&["a"], &empty), Metrics::default());
    }

    #[test]
    fn k_larger_than_the_run_and_empty_run() {
        let j = judgments(&[("a", 1), ("b", 1)]);
        let m = Metrics::of_run(&["b"], &j);
        close(m.ndcg_10, 1.0 / 1.6309297535714575);
        close(m.mrr_10, 1.0);
        close(m.recall_10, 0.5);
        close(m.recall_100, 0.5);
        let none: [&str; 0] = [];
        assert_eq!(Metrics::of_run(&none, &j), Metrics::default());
        close(ndcg_at_k(&["a"], &j, 0), 0.0);
    }

    #[test]
    fn relevant_document_beyond_ten_counts_only_for_recall_at_100() {
        let j = judgments(&[("t", 1)]);
        let mut run: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
        run[10] = "t".into(); // rank 11
        let m = Metrics::of_run(&run, &j);
        assert_eq!((m.ndcg_10, m.mrr_10, m.recall_10), (0.0, 0.0, 0.0));
        close(m.recall_100, 1.0);
    }

    #[test]
    fn negative_grades_count_as_zero() {
        let j = judgments(&[("a", -1), ("b", 1)]);
        close(ndcg_at_k(&["a", "b"], &j, 10), 1.0 / 3f64.log2());
        close(recall_at_k(&["a"], &j, 10), 0.0);
    }

    #[test]
    fn summary_means_over_all_queries() {
        let mut s = MetricsSummary::default();
        s.add(&Metrics {
            ndcg_10: 1.0,
            mrr_10: 1.0,
            recall_10: 1.0,
            recall_100: 1.0,
        });
        s.add(&Metrics::default());
        s.add(&Metrics {
            ndcg_10: 0.5,
            mrr_10: 0.25,
            recall_10: 1.0,
            recall_100: 1.0,
        });
        let m = s.mean();
        assert_eq!(s.count(), 3);
        close(m.ndcg_10, 0.5);
        close(m.mrr_10, 1.25 / 3.0);
        close(m.recall_10, 2.0 / 3.0);
        assert_eq!(MetricsSummary::default().mean(), Metrics::default());
    }
}
