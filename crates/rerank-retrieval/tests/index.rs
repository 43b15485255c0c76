//! Tests of the persistent passage index: persistence, duplicates, embedder checks, input
//! validation, crash safety (a child process killed inside `add`), rollback, writer
//! exclusion, HNSW recall against exact search, BM25 and corruption handling.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rerank_retrieval::index::{AddStage, EmbedderId, Index};
use rerank_retrieval::{Document, RetrievalError};
use serde_json::{json, Map};

const DIMS: usize = 16;

/// splitmix64: a small deterministic PRNG.
struct Rng(u64);

impl Rng {
    /// A unit vector near a random `latent`-dimensional subspace (fixed by `basis`, `latent`
    /// unit vectors of `dims`) plus 5 % isotropic noise: low intrinsic dimension, like text
    /// embeddings, unlike isotropic random vectors.
    fn embedding_like(&mut self, basis: &[Vec<f32>]) -> Vec<f32> {
        let dims = basis[0].len();
        let z = self.unit_vector(basis.len());
        let noise = self.unit_vector(dims);
        let mut v: Vec<f32> = (0..dims)
            .map(|j| z.iter().zip(basis).map(|(a, b)| a * b[j]).sum::<f32>() + 0.05 * noise[j])
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// A random unit vector (normalised Gaussian: uniform on the sphere).
    fn unit_vector(&mut self, dims: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                let (u1, u2) = (self.unit(), self.unit());
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

fn embedder(fingerprint: &str, dims: usize) -> EmbedderId {
    EmbedderId {
        name: "test-embedder".into(),
        fingerprint: fingerprint.into(),
        dims,
    }
}

fn doc(id: &str, text: &str) -> Document {
    let mut metadata = Map::new();
    metadata.insert("source".into(), json!(format!("{id}.txt")));
    metadata.insert("chunk".into(), json!(id.len()));
    Document {
        id: id.into(),
        text: text.into(),
        metadata,
        score: 0.0,
    }
}

/// `n` passages `p<start>..` with random unit vectors of `dims`.
fn batch(rng: &mut Rng, start: usize, n: usize, dims: usize) -> (Vec<Document>, Vec<Vec<f32>>) {
    (start..start + n)
        .map(|i| {
            let text = format!("passage number {i} about topic {}", i % 7);
            (doc(&format!("p{i}"), &text), rng.unit_vector(dims))
        })
        .unzip()
}

fn gen_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    names.sort();
    names
}

fn assert_same_contents(a: &Index, b: &Index) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.embedder(), b.embedder());
    for i in 0..a.len() {
        assert_eq!(a.passage(i), b.passage(i), "passage {i}");
        assert_eq!(a.vector(i), b.vector(i), "vector {i}");
    }
}

#[test]
fn persists_and_extends_incrementally() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ix");
    let mut rng = Rng(1);
    let (docs, vecs) = batch(&mut rng, 0, 50, DIMS);

    let mut index = Index::create(&dir, embedder("fp", DIMS)).unwrap();
    assert!(index.is_empty());
    assert_eq!(index.add(docs.clone(), vecs.clone()).unwrap(), 50);
    assert_eq!(index.len(), 50);
    assert!(index.contains_id("p7") && !index.contains_id("p50"));
    for (i, v) in vecs.iter().enumerate() {
        assert_eq!(
            index.vector(i),
            &v[..],
            "unit vectors are stored bit for bit"
        );
    }
    let query = rng.unit_vector(DIMS);
    let before = index.search_exact(&query, 5).unwrap();

    let reopened = Index::open(&dir).unwrap();
    assert_same_contents(&index, &reopened);
    assert_eq!(reopened.passage(3), &docs[3]);
    assert_eq!(reopened.search_exact(&query, 5).unwrap(), before);
    assert_eq!(reopened.search_dense(&query, 5).unwrap()[0], before[0]);
    drop(reopened);

    // Incremental: 10 known ids + 20 new ones.
    let (more_docs, more_vecs) = batch(&mut rng, 40, 30, DIMS);
    assert_eq!(index.add(more_docs, more_vecs).unwrap(), 20);
    assert_eq!(index.len(), 70);
    let reopened = Index::open(&dir).unwrap();
    assert_same_contents(&index, &reopened);
    assert_eq!(reopened.passage(69).id, "p69");
    assert_eq!(reopened.search_bm25("number 65", 3).unwrap()[0].0, 65);
    assert_eq!(
        gen_dirs(&dir),
        vec!["gen-2".to_string()],
        "old generations are removed"
    );

    // open_or_create on an existing index opens it.
    let again = Index::open_or_create(&dir, embedder("fp", DIMS)).unwrap();
    assert_eq!(again.len(), 70);
}

#[test]
fn index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Index>();
}

#[test]
fn duplicate_ids_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = Index::create(tmp.path(), embedder("fp", 4)).unwrap();
    let v = |x: f32| vec![x, 1.0, 0.0, 0.0];
    let docs = vec![doc("a", "alpha"), doc("b", "beta"), doc("a", "alpha again")];
    assert_eq!(index.add(docs, vec![v(0.1), v(0.2), v(0.3)]).unwrap(), 2);
    assert_eq!(
        index.passage(0).text,
        "alpha",
        "the first of a repeated id wins"
    );

    let docs = vec![doc("b", "beta 2"), doc("c", "gamma")];
    assert_eq!(index.add(docs, vec![v(0.4), v(0.5)]).unwrap(), 1);
    assert_eq!(index.len(), 3);

    // Nothing new: no new generation is written.
    let gens = gen_dirs(tmp.path());
    assert_eq!(index.add(vec![doc("c", "x")], vec![v(0.6)]).unwrap(), 0);
    assert_eq!(gen_dirs(tmp.path()), gens);
    assert_eq!(index.add(Vec::new(), Vec::new()).unwrap(), 0);

    let reopened = Index::open(tmp.path()).unwrap();
    let ids: Vec<&str> = (0..reopened.len())
        .map(|i| reopened.passage(i).id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn refuses_another_embedder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    Index::create(dir, embedder("fp-1", 8)).unwrap();

    let err = Index::open_or_create(dir, embedder("fp-2", 8)).unwrap_err();
    assert!(
        matches!(err, RetrievalError::EmbedderMismatch { .. }),
        "{err}"
    );
    let err = Index::open_or_create(dir, embedder("fp-1", 16)).unwrap_err();
    assert!(
        matches!(err, RetrievalError::EmbedderMismatch { .. }),
        "{err}"
    );
    let other_name = EmbedderId {
        name: "renamed".into(),
        ..embedder("fp-1", 8)
    };
    let index = Index::open_or_create(dir, other_name).unwrap();
    assert_eq!(index.embedder(), &embedder("fp-1", 8));
    assert!(index.check_embedder(&embedder("fp-1", 8)).is_ok());
    assert!(matches!(
        index.check_embedder(&embedder("fp-3", 8)),
        Err(RetrievalError::EmbedderMismatch { .. })
    ));

    let err = Index::create(dir, embedder("fp-1", 8)).unwrap_err();
    assert!(matches!(err, RetrievalError::InvalidArgument(_)), "{err}");
    let err = Index::create(&dir.join("zero"), embedder("fp", 0)).unwrap_err();
    assert!(matches!(err, RetrievalError::InvalidArgument(_)), "{err}");
}

#[test]
fn rejects_bad_vectors_and_keeps_the_index_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = Index::create(tmp.path(), embedder("fp", 4)).unwrap();
    index
        .add(vec![doc("a", "alpha")], vec![vec![1.0, 0.0, 0.0, 0.0]])
        .unwrap();

    let invalid =
        |r: rerank_retrieval::Result<usize>| matches!(r, Err(RetrievalError::InvalidArgument(_)));
    assert!(invalid(index.add(vec![doc("b", "b")], vec![vec![1.0; 3]])));
    assert!(invalid(
        index.add(vec![doc("b", "b")], vec![vec![f32::NAN, 0.0, 0.0, 1.0]])
    ));
    assert!(invalid(index.add(
        vec![doc("b", "b")],
        vec![vec![f32::INFINITY, 0.0, 0.0, 1.0]]
    )));
    assert!(invalid(index.add(vec![doc("b", "b")], Vec::new())));
    assert!(invalid(index.add(vec![doc("", "b")], vec![vec![1.0; 4]])));
    assert_eq!(index.len(), 1);

    assert!(matches!(
        index.search_dense(&[1.0; 3], 5),
        Err(RetrievalError::InvalidArgument(_))
    ));
    assert!(matches!(
        index.search_exact(&[f32::NAN, 0.0, 0.0, 0.0], 5),
        Err(RetrievalError::InvalidArgument(_))
    ));

    // Vectors that are not unit length are normalised: scores stay cosine similarities.
    index
        .add(vec![doc("b", "beta")], vec![vec![0.0, 3.0, 4.0, 0.0]])
        .unwrap();
    assert_eq!(index.vector(1), &[0.0, 0.6, 0.8, 0.0]);
    let hits = index.search_dense(&[0.0, 30.0, 40.0, 0.0], 1).unwrap();
    assert_eq!(hits[0].0, 1);
    assert!((hits[0].1 - 1.0).abs() < 1e-5);
    assert_eq!(Index::open(tmp.path()).unwrap().len(), 2);
}

#[test]
fn empty_index_searches_return_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path(), embedder("fp", 4)).unwrap();
    assert!(index
        .search_dense(&[1.0, 0.0, 0.0, 0.0], 10)
        .unwrap()
        .is_empty());
    assert!(index
        .search_exact(&[1.0, 0.0, 0.0, 0.0], 10)
        .unwrap()
        .is_empty());
    assert!(index.search_bm25("anything", 10).unwrap().is_empty());
    let reopened = Index::open(tmp.path()).unwrap();
    assert!(reopened.is_empty());
    assert!(reopened
        .search_dense(&[1.0, 0.0, 0.0, 0.0], 10)
        .unwrap()
        .is_empty());

    let mut index = reopened;
    index
        .add(vec![doc("a", "alpha")], vec![vec![0.0, 1.0, 0.0, 0.0]])
        .unwrap();
    assert!(index
        .search_dense(&[1.0, 0.0, 0.0, 0.0], 0)
        .unwrap()
        .is_empty());
    assert_eq!(
        index.search_dense(&[1.0, 0.0, 0.0, 0.0], 10).unwrap().len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Crash safety: a child process (this test binary, running `crash_child`) is killed with
// `abort()` at a chosen point inside `add`; the parent then checks what `open` sees.

const CRASH_DIR: &str = "RERANK_INDEX_TEST_CRASH_DIR";
const CRASH_STAGE: &str = "RERANK_INDEX_TEST_CRASH_STAGE";

const STAGES: [AddStage; 7] = [
    AddStage::PassagesWritten,
    AddStage::VectorsWritten,
    AddStage::HnswWritten,
    AddStage::Bm25Written,
    AddStage::GenerationWritten,
    AddStage::CurrentTempWritten,
    AddStage::Committed,
];

/// Not a test on its own: when run by `killed_writer_leaves_old_or_new_state` with the
/// environment variables set, adds 10 passages and aborts the process at the given stage.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(stage)) = (std::env::var(CRASH_DIR), std::env::var(CRASH_STAGE)) else {
        return;
    };
    let mut index = Index::open(Path::new(&dir)).unwrap();
    let (docs, vecs) = batch(&mut Rng(99), 20, 10, DIMS);
    let _ = index.add_with_hook(docs, vecs, &mut |s| {
        if format!("{s:?}") == stage {
            std::process::abort();
        }
        Ok(())
    });
    panic!("the child was supposed to abort at {stage}");
}

#[test]
fn killed_writer_leaves_old_or_new_state() {
    let exe = std::env::current_exe().unwrap();
    for stage in STAGES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ix");
        let mut index = Index::create(&dir, embedder("fp", DIMS)).unwrap();
        let (docs, vecs) = batch(&mut Rng(5), 0, 20, DIMS);
        index.add(docs, vecs).unwrap();

        let status = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_DIR, &dir)
            .env(CRASH_STAGE, format!("{stage:?}"))
            .output()
            .unwrap();
        assert!(!status.status.success(), "child did not die at {stage:?}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.status.signal(),
                Some(6),
                "SIGABRT at {stage:?}: {status:?}"
            );
        }

        let mut after = Index::open(&dir).unwrap_or_else(|e| panic!("open after {stage:?}: {e}"));
        if stage == AddStage::Committed {
            assert_eq!(after.len(), 30, "{stage:?}: the new state");
            assert_eq!(after.passage(29).id, "p29");
        } else {
            assert_same_contents(&index, &after);
        }
        // `open` removed the leftovers; the index takes further writes.
        assert_eq!(gen_dirs(&dir).len(), 1, "{stage:?}: {:?}", gen_dirs(&dir));
        assert!(!dir.join("CURRENT.tmp").exists());
        let (docs, vecs) = batch(&mut Rng(7), 100, 5, DIMS);
        assert_eq!(after.add(docs, vecs).unwrap(), 5);
        let expected = after.len();
        assert_eq!(Index::open(&dir).unwrap().len(), expected);
    }
}

#[test]
fn failed_add_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut index = Index::create(dir, embedder("fp", DIMS)).unwrap();
    let mut rng = Rng(11);
    let (docs, vecs) = batch(&mut rng, 0, 20, DIMS);
    index.add(docs, vecs).unwrap();
    let query = rng.unit_vector(DIMS);
    let dense = index.search_dense(&query, 3).unwrap();

    for stage in &STAGES[..6] {
        let (docs, vecs) = batch(&mut rng, 20, 10, DIMS);
        let err = index
            .add_with_hook(docs, vecs, &mut |s| {
                if s == *stage {
                    Err(RetrievalError::InvalidArgument("injected".into()))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(matches!(err, RetrievalError::InvalidArgument(_)));
        assert_eq!(index.len(), 20, "{stage:?}");
        assert!(!index.contains_id("p25"));
        assert_eq!(index.search_dense(&query, 3).unwrap(), dense, "{stage:?}");
        assert!(index
            .search_bm25("number 25", 5)
            .unwrap()
            .iter()
            .all(|h| h.0 < 20));
        assert_eq!(gen_dirs(dir), vec!["gen-1".to_string()], "{stage:?}");
        assert_eq!(Index::open(dir).unwrap().len(), 20);
    }
    let (docs, vecs) = batch(&mut rng, 20, 10, DIMS);
    assert_eq!(index.add(docs, vecs).unwrap(), 10);
    assert_eq!(Index::open(dir).unwrap().len(), 30);
}

#[test]
fn one_writer_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut a = Index::create(dir, embedder("fp", DIMS)).unwrap();
    let mut b = Index::open(dir).unwrap();
    let mut rng = Rng(3);

    // While `a` is inside `add` (holding the lock), `b` cannot write.
    let (docs, vecs) = batch(&mut rng, 0, 5, DIMS);
    let mut b_result = None;
    a.add_with_hook(docs, vecs, &mut |stage| {
        if stage == AddStage::HnswWritten {
            let (docs, vecs) = batch(&mut Rng(4), 50, 5, DIMS);
            b_result = Some(b.add(docs, vecs));
        }
        Ok(())
    })
    .unwrap();
    match b_result.unwrap() {
        Err(RetrievalError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock)
        }
        other => panic!("expected a lock error, got {other:?}"),
    }

    // After `a` committed, `b` is stale and must reopen.
    let (docs, vecs) = batch(&mut rng, 60, 5, DIMS);
    assert!(matches!(
        b.add(docs.clone(), vecs.clone()),
        Err(RetrievalError::Io { .. })
    ));
    let mut b = Index::open(dir).unwrap();
    assert_eq!(b.add(docs, vecs).unwrap(), 5);
    assert_eq!(Index::open(dir).unwrap().len(), 10);
}

#[test]
fn hnsw_recall_at_10_vs_exact() {
    const N: usize = 3_000;
    const D: usize = 384;
    let tmp = tempfile::tempdir().unwrap();
    let mut index = Index::create(tmp.path(), embedder("fp", D)).unwrap();
    let mut rng = Rng(42);
    let (docs, vecs) = batch(&mut rng, 0, N, D);
    let t = Instant::now();
    index.add(docs, vecs).unwrap();
    eprintln!("add {N} x {D}: {:?}", t.elapsed());

    let queries: Vec<Vec<f32>> = (0..50).map(|_| rng.unit_vector(D)).collect();
    let check = |index: &Index| {
        let mut found = 0;
        for q in &queries {
            let exact: Vec<usize> = index
                .search_exact(q, 10)
                .unwrap()
                .iter()
                .map(|h| h.0)
                .collect();
            let approx = index.search_dense(q, 10).unwrap();
            assert_eq!(approx.len(), 10);
            assert!(approx.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
            found += approx.iter().filter(|h| exact.contains(&h.0)).count();
        }
        found as f64 / (10 * queries.len()) as f64
    };
    let recall = check(&index);
    eprintln!("recall@10 = {recall:.3}");
    assert!(recall >= 0.95, "recall@10 = {recall}");
    // The reloaded graph is as good.
    let t = Instant::now();
    let reopened = Index::open(tmp.path()).unwrap();
    eprintln!("open {N} x {D}: {:?}", t.elapsed());
    assert!(check(&reopened) >= 0.95);

    // Exact search finds a stored vector itself with similarity 1.
    let hit = reopened.search_exact(reopened.vector(123), 1).unwrap()[0];
    assert_eq!(hit.0, 123);
    assert!((hit.1 - 1.0).abs() < 1e-5);

    // Concurrent searches from more threads than cores.
    std::thread::scope(|s| {
        for t in 0..8 {
            let (index, queries) = (&reopened, &queries);
            s.spawn(move || {
                for q in queries.iter().skip(t).step_by(2) {
                    assert_eq!(index.search_dense(q, 10).unwrap().len(), 10);
                }
            });
        }
    });
}

#[test]
fn bm25_ranks_rare_words_and_ignores_query_syntax() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = Index::create(tmp.path(), embedder("fp", 4)).unwrap();
    let texts = [
        "The cat sat on the mat.",
        "A dog and a cat played in the garden.",
        "The orchestra tuned its Xylophone before the concert.",
        "Cats and dogs: a field guide (second edition).",
        "Nothing to see here, the garden is empty.",
    ];
    let docs: Vec<Document> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| doc(&format!("d{i}"), t))
        .collect();
    let vecs = vec![vec![1.0, 0.0, 0.0, 0.0]; texts.len()];
    index.add(docs, vecs).unwrap();

    let hits = index.search_bm25("xylophone", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, 2);
    assert!(hits[0].1 > 0.0);
    let hits = index.search_bm25("the XYLOPHONE garden", 10).unwrap();
    assert_eq!(
        hits[0].0, 2,
        "the rare word outweighs common ones: {hits:?}"
    );
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(index.search_bm25("garden", 1).unwrap().len() == 1);
    assert!(index.search_bm25("garden", 0).unwrap().is_empty());

    for query in [
        "a AND (b OR c:",
        "*?",
        "",
        "   ",
        "\"unclosed phrase",
        "text:cat^2 -dog ~ [a TO b} {",
        "ord:1",
        "+++ --- !!! \\ / ' ` @",
    ] {
        let hits = index
            .search_bm25(query, 10)
            .unwrap_or_else(|e| panic!("{query:?}: {e}"));
        assert!(hits.iter().all(|h| h.0 < index.len()));
    }
    assert!(index.search_bm25("*?", 10).unwrap().is_empty());
    assert!(index.search_bm25("", 10).unwrap().is_empty());
    // Syntax around words still finds the words.
    assert!(!index
        .search_bm25("a AND (b OR cat:", 10)
        .unwrap()
        .is_empty());

    let reopened = Index::open(tmp.path()).unwrap();
    assert_eq!(reopened.search_bm25("xylophone", 10).unwrap()[0].0, 2);
}

#[test]
fn corruption_is_bad_index_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let is_bad = |dir: &Path| match Index::open(dir) {
        Err(RetrievalError::BadIndex { .. }) => true,
        Err(e) => panic!("expected BadIndex, got {e}"),
        Ok(_) => false,
    };
    assert!(is_bad(&tmp.path().join("missing")));
    assert!(is_bad(tmp.path()), "an empty directory holds no index");

    let fresh = |name: &str| {
        let dir = tmp.path().join(name);
        let mut index = Index::create(&dir, embedder("fp", DIMS)).unwrap();
        let (docs, vecs) = batch(&mut Rng(8), 0, 30, DIMS);
        index.add(docs, vecs).unwrap();
        let gen = dir.join("gen-1");
        assert!(gen.is_dir());
        (dir, gen)
    };

    let (dir, gen) = fresh("manifest");
    std::fs::write(gen.join("manifest.json"), b"{ not json").unwrap();
    assert!(is_bad(&dir));
    std::fs::write(gen.join("manifest.json"), b"{\"format\": \"rerank-index\"}").unwrap();
    assert!(is_bad(&dir));
    std::fs::remove_file(gen.join("manifest.json")).unwrap();
    assert!(is_bad(&dir));

    let (dir, _) = fresh("current");
    std::fs::write(dir.join("CURRENT"), b"garbage\n").unwrap();
    assert!(is_bad(&dir));
    std::fs::write(dir.join("CURRENT"), b"gen-7\n").unwrap();
    assert!(is_bad(&dir));

    let truncate = |path: &Path| {
        let len = std::fs::metadata(path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len / 2).unwrap();
    };
    for file in ["vectors.f32", "passages.jsonl", "hnsw.usearch"] {
        let (dir, gen) = fresh(file);
        truncate(&gen.join(file));
        assert!(is_bad(&dir), "{file}");
    }

    let (dir, gen) = fresh("passage-line");
    let text = std::fs::read_to_string(gen.join("passages.jsonl")).unwrap();
    std::fs::write(gen.join("passages.jsonl"), text.replacen('{', "[", 1)).unwrap();
    assert!(is_bad(&dir));

    let (dir, gen) = fresh("hnsw-header");
    let mut bytes = std::fs::read(gen.join("hnsw.usearch")).unwrap();
    bytes.iter_mut().take(64).for_each(|b| *b = 0xAB);
    std::fs::write(gen.join("hnsw.usearch"), bytes).unwrap();
    assert!(is_bad(&dir));

    let (dir, gen) = fresh("bm25");
    std::fs::remove_dir_all(gen.join("bm25")).unwrap();
    assert!(is_bad(&dir));
    let (dir, gen) = fresh("bm25-meta");
    std::fs::write(gen.join("bm25").join("meta.json"), b"{}").unwrap();
    assert!(is_bad(&dir));
}

/// 20,000 × 384 in one `add`, then 1,000 more: the index holds all 21,000 after reopening,
/// HNSW finds at least 90 % of the exact top 10 of embedding-like queries (low intrinsic
/// dimension, as text embeddings), every stored vector is its own exact nearest neighbour,
/// and searches return `k` hits best first. Prints the timings (`--nocapture`); it was a
/// timing-only test that asserted nothing (issue 13 item 9).
#[test]
#[ignore = "20k × 384 vectors: slow in the dev profile; CI runs it with --include-ignored in release"]
fn index_20k_x_384_recall_and_persistence() {
    const N: usize = 20_000;
    const D: usize = 384;
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(2024);
    let basis: Vec<Vec<f32>> = (0..32).map(|_| rng.unit_vector(D)).collect();
    let batch = |rng: &mut Rng, start: usize, n: usize| -> (Vec<Document>, Vec<Vec<f32>>) {
        let (docs, _) = batch(rng, start, n, 1);
        let vecs = (0..n).map(|_| rng.embedding_like(&basis)).collect();
        (docs, vecs)
    };
    let (docs, vecs) = batch(&mut rng, 0, N);
    let mut index = Index::create(tmp.path(), embedder("fp", D)).unwrap();
    let t = Instant::now();
    index.add(docs, vecs).unwrap();
    eprintln!("add {N} x {D} (one batch): {:?}", t.elapsed());
    let (docs, vecs) = batch(&mut rng, N, 1_000);
    let t = Instant::now();
    index.add(docs, vecs).unwrap();
    eprintln!("add 1,000 more to {N}: {:?}", t.elapsed());
    assert_eq!(index.len(), N + 1_000);
    let t = Instant::now();
    let index = Index::open(tmp.path()).unwrap();
    eprintln!("open {} passages: {:?}", index.len(), t.elapsed());
    assert_eq!(index.len(), N + 1_000);
    let queries: Vec<Vec<f32>> = (0..100).map(|_| rng.embedding_like(&basis)).collect();
    let t = Instant::now();
    for q in &queries {
        let hits = index.search_dense(q, 10).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
    }
    eprintln!("search_dense k=10: {:?}/query", t.elapsed() / 100);
    let t = Instant::now();
    for q in &queries {
        assert_eq!(index.search_exact(q, 10).unwrap().len(), 10);
    }
    eprintln!("search_exact k=10: {:?}/query", t.elapsed() / 100);
    let t = Instant::now();
    for i in 0..100 {
        assert!(
            index
                .search_bm25(&format!("passage topic {i}"), 10)
                .unwrap()
                .len()
                <= 10
        );
    }
    eprintln!("search_bm25 k=10: {:?}/query", t.elapsed() / 100);
    let mut found = 0;
    for q in &queries {
        let exact: Vec<usize> = index
            .search_exact(q, 10)
            .unwrap()
            .iter()
            .map(|h| h.0)
            .collect();
        found += index
            .search_dense(q, 10)
            .unwrap()
            .iter()
            .filter(|h| exact.contains(&h.0))
            .count();
    }
    let recall = found as f64 / 1000.0;
    eprintln!("recall@10 at 21k: {recall:.3}");
    assert!(recall >= 0.9, "HNSW recall@10 at 21k = {recall}");
    for ord in (0..index.len()).step_by(997) {
        let hit = index.search_exact(index.vector(ord), 1).unwrap()[0];
        assert_eq!(hit.0, ord);
        assert!((hit.1 - 1.0).abs() < 1e-5);
    }
}
