//! Model resolution against a fake Hugging Face hub on 127.0.0.1: download into the cache,
//! offline reuse, fallbacks (shards, pytorch_model.bin), clear errors, and the
//! `RERANK_MODEL_PATH` search.
//!
//! The fake hub speaks the protocol hf-hub 0.4.3 relies on: `GET {endpoint}/{repo}/resolve/
//! {revision}/{file}` with `Range: bytes=0-0` for metadata (answers `x-repo-commit`, `etag`,
//! `content-range`), then `Range: bytes=0-` for the content; large files (`*.safetensors`,
//! `*.bin`) are answered like LFS files on the real hub: a 302 to a "CDN" URL carrying
//! `x-linked-etag`. Missing files are 404 (`x-error-code: EntryNotFound`), unknown repositories
//! a bare 404, `test-org/private` a 401 `RepoNotFound` like the hub for anonymous requests.
//!
//! All tests but `environment_variables` pass their settings explicitly and may run in
//! parallel; only `environment_variables` touches the (process-global) HF_* variables.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use rerank_engine::hub::{HubId, HubSettings};
use rerank_engine::resolve::{resolve_model, resolve_model_with, ResolveSettings};
use rerank_engine::{CrossEncoder, EngineError};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const PAIR: (&str, &str) = (
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
);

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn model_src(name: &str) -> PathBuf {
    shared().join("models").join(name)
}

/// ureq (inside hf-hub) routes every request through `ALL_PROXY` / `HTTP(S)_PROXY` and ignores
/// `NO_PROXY`: drop them so that requests to the fake hub stay on 127.0.0.1. Every test calls
/// this first, so the removal happens before any request of any test.
fn no_proxies() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for var in [
            "ALL_PROXY",
            "all_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
        ] {
            std::env::remove_var(var);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The fake hub
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Logged {
    path: String,
    authorization: Option<String>,
}

struct FakeHub {
    endpoint: String,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl FakeHub {
    /// Serves `repos` (repo id → folder) on 127.0.0.1 with commit [`COMMIT`].
    fn start(repos: &[(&str, PathBuf)]) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let repos: Arc<HashMap<String, PathBuf>> = Arc::new(
            repos
                .iter()
                .map(|(id, dir)| (id.to_string(), dir.clone()))
                .collect(),
        );
        let log = Arc::new(Mutex::new(Vec::new()));
        let (log2, endpoint2) = (log.clone(), endpoint.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (repos, log, endpoint) = (repos.clone(), log2.clone(), endpoint2.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &repos, &log, &endpoint);
                });
            }
        });
        FakeHub { endpoint, log }
    }

    fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

fn fake_etag(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{:016x}{:016x}", h.finish(), bytes.len())
}

struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn status(status: &'static str, headers: Vec<(String, String)>) -> Reply {
        Reply {
            status,
            headers,
            body: status.as_bytes().to_vec(),
        }
    }
}

fn serve(
    stream: TcpStream,
    repos: &HashMap<String, PathBuf>,
    log: &Mutex<Vec<Logged>>,
    endpoint: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    log.lock().unwrap().push(Logged {
        path: path.clone(),
        authorization: headers.get("authorization").cloned(),
    });
    let reply = route(&path, headers.get("range"), repos, endpoint);
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&reply.body)?;
    out.flush()
}

fn route(
    path: &str,
    range: Option<&String>,
    repos: &HashMap<String, PathBuf>,
    endpoint: &str,
) -> Reply {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // "CDN" of LFS files: /cdn/<owner>/<name>/<file...>
    if segments.first() == Some(&"cdn") && segments.len() >= 4 {
        let repo = format!("{}/{}", segments[1], segments[2]);
        let file = segments[3..].join("/");
        return match repos.get(&repo).map(|d| d.join(&file)) {
            Some(p) if p.is_file() => content(std::fs::read(p).unwrap(), range, vec![]),
            _ => Reply::status("404 Not Found", vec![]),
        };
    }
    // /<owner>/<name>/resolve/<revision>/<file...>
    if segments.len() < 5 || segments[2] != "resolve" {
        return Reply::status("404 Not Found", vec![]);
    }
    let repo = format!("{}/{}", segments[0], segments[1]);
    let revision = segments[3].replace("%2F", "/");
    let file = segments[4..].join("/");
    if repo == "test-org/private" {
        let h = vec![("X-Error-Code".into(), "RepoNotFound".into())];
        return Reply::status("401 Unauthorized", h);
    }
    let Some(dir) = repos.get(&repo) else {
        return Reply::status("404 Not Found", vec![]);
    };
    if revision != "main" && revision != COMMIT {
        let h = vec![("X-Error-Code".into(), "RevisionNotFound".into())];
        return Reply::status("404 Not Found", h);
    }
    let source = dir.join(&file);
    if file.contains("..") || !source.is_file() || file == "README.md" {
        let h = vec![
            ("X-Error-Code".into(), "EntryNotFound".into()),
            ("X-Repo-Commit".into(), COMMIT.into()),
        ];
        return Reply::status("404 Not Found", h);
    }
    let bytes = std::fs::read(&source).unwrap();
    let etag = fake_etag(&bytes);
    if file.ends_with(".safetensors") || file.ends_with(".bin") {
        // LFS file: the hub answers with a redirect to its CDN.
        let headers = vec![
            ("Location".into(), format!("{endpoint}/cdn/{repo}/{file}")),
            ("X-Repo-Commit".into(), COMMIT.into()),
            ("X-Linked-Etag".into(), format!("\"{etag}\"")),
            ("X-Linked-Size".into(), bytes.len().to_string()),
        ];
        return Reply::status("302 Found", headers);
    }
    let headers = vec![
        ("X-Repo-Commit".into(), COMMIT.into()),
        ("ETag".into(), format!("\"{etag}\"")),
    ];
    content(bytes, range, headers)
}

/// 200 (no Range) or 206 with `Content-Range` (`bytes=a-b` / `bytes=a-`), 416 past the end.
fn content(bytes: Vec<u8>, range: Option<&String>, mut headers: Vec<(String, String)>) -> Reply {
    let total = bytes.len();
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return Reply {
            status: "200 OK",
            headers,
            body: bytes,
        };
    };
    let (a, b) = spec.split_once('-').unwrap();
    let start: usize = a.parse().unwrap();
    let end: usize = if b.is_empty() {
        total.saturating_sub(1)
    } else {
        b.parse::<usize>().unwrap().min(total.saturating_sub(1))
    };
    if start >= total {
        headers.push(("Content-Range".into(), format!("bytes */{total}")));
        return Reply::status("416 Range Not Satisfiable", headers);
    }
    headers.push((
        "Content-Range".into(),
        format!("bytes {start}-{end}/{total}"),
    ));
    Reply {
        status: "206 Partial Content",
        headers,
        body: bytes[start..=end].to_vec(),
    }
}

/// An endpoint on 127.0.0.1 where nothing listens (connections are refused).
fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    endpoint
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn settings(endpoint: &str, home: &Path, offline: bool) -> ResolveSettings {
    ResolveSettings {
        search_path: vec![],
        hub: HubSettings {
            endpoint: endpoint.to_string(),
            cache_dir: home.join("hub"),
            token: None,
            offline,
            progress: false,
        },
    }
}

fn expected_logits(model: &str, case: &str) -> Vec<f32> {
    let path = shared().join("reference/expected.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = json["models"][model]["cases"].as_array().unwrap();
    let case = cases.iter().find(|c| c["name"] == case).unwrap();
    assert_eq!(case["query"], PAIR.0);
    assert_eq!(case["document"], PAIR.1);
    case["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_scores_like(dir: &Path, reference_model: &str) {
    let ce = CrossEncoder::from_dir(dir, Default::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    let got = &ce.predict(&[PAIR]).unwrap()[0].logits;
    let want = expected_logits(reference_model, "short_english");
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-5, "logits {got:?}, expected {want:?}");
    }
}

fn snapshot_dir(home: &Path, repo_id: &str) -> PathBuf {
    home.join("hub")
        .join(format!("models--{}", repo_id.replace('/', "--")))
        .join("snapshots")
        .join(COMMIT)
}

fn message(err: &EngineError) -> String {
    err.to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn download_lands_in_cache_then_works_offline() {
    no_proxies();
    let src = model_src("tiny-bert-ce");
    let hub = FakeHub::start(&[("test-org/tiny-bert-ce", src.clone())]);
    let home = tempfile::tempdir().unwrap();
    let online = settings(&hub.endpoint, home.path(), false);

    let dir = resolve_model_with("test-org/tiny-bert-ce", &online).unwrap();
    let snapshot = snapshot_dir(home.path(), "test-org/tiny-bert-ce");
    assert_eq!(dir, snapshot);
    let repo_dir = snapshot.parent().unwrap().parent().unwrap();
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        COMMIT
    );
    for file in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "tokenizer_config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "modules.json",
    ] {
        let got = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(got, std::fs::read(src.join(file)).unwrap(), "{file}");
    }
    // Absent optional files: not downloaded, remembered as such, and not an error.
    for file in ["special_tokens_map.json", "1_Pooling/config.json"] {
        assert!(!dir.join(file).exists(), "{file}");
        assert!(repo_dir.join(".no_exist").join(COMMIT).join(file).exists());
    }
    // No fallback weights were asked for once model.safetensors was there.
    let asked = |name: &str| hub.requests().iter().any(|r| r.path.ends_with(name));
    assert!(!asked("pytorch_model.bin") && !asked("model.safetensors.index.json"));
    assert!(hub.requests().iter().all(|r| r.authorization.is_none()));
    assert_scores_like(&dir, "tiny-bert-ce");

    // Offline: from the cache only, without a single request.
    let before = hub.count();
    let offline = settings(&hub.endpoint, home.path(), true);
    assert_eq!(
        resolve_model_with("test-org/tiny-bert-ce", &offline).unwrap(),
        snapshot
    );
    let pinned = format!("test-org/tiny-bert-ce@{COMMIT}");
    assert_eq!(resolve_model_with(&pinned, &offline).unwrap(), snapshot);
    assert_eq!(
        hub.count(),
        before,
        "offline mode must not touch the network"
    );

    // Online again: only config.json is fetched (to learn the commit); nothing else, since the
    // snapshot is complete and the absent optional files are remembered.
    let before = hub.count();
    assert_eq!(
        resolve_model_with("test-org/tiny-bert-ce", &online).unwrap(),
        snapshot
    );
    let again = &hub.requests()[before..];
    assert!(!again.is_empty());
    assert!(
        again.iter().all(|r| r.path.ends_with("/config.json")),
        "{again:?}"
    );

    // Hub unreachable but the model is cached: the cached copy is used.
    let unreachable = settings(&dead_endpoint(), home.path(), false);
    assert_eq!(
        resolve_model_with("test-org/tiny-bert-ce", &unreachable).unwrap(),
        snapshot
    );
    assert_scores_like(&snapshot, "tiny-bert-ce");
}

#[test]
fn sharded_and_pickle_weights_fall_back() {
    no_proxies();
    let hub = FakeHub::start(&[
        (
            "test-org/tiny-bert-ce-2label",
            model_src("tiny-bert-ce-2label"),
        ),
        ("test-org/tiny-bert-ce-bin", model_src("tiny-bert-ce-bin")),
    ]);
    let home = tempfile::tempdir().unwrap();
    let online = settings(&hub.endpoint, home.path(), false);

    let dir = resolve_model_with("test-org/tiny-bert-ce-2label", &online).unwrap();
    assert_eq!(
        dir,
        snapshot_dir(home.path(), "test-org/tiny-bert-ce-2label")
    );
    for shard in [
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        assert!(dir.join(shard).is_file(), "{shard}");
    }
    assert!(!dir.join("model.safetensors").exists());
    assert!(!hub
        .requests()
        .iter()
        .any(|r| r.path.ends_with("pytorch_model.bin")));
    assert_scores_like(&dir, "tiny-bert-ce-2label");

    let dir = resolve_model_with("test-org/tiny-bert-ce-bin", &online).unwrap();
    assert!(dir.join("pytorch_model.bin").is_file());
    assert!(!dir.join("model.safetensors").exists());
    assert!(!dir.join("model.safetensors.index.json").exists());
    // tiny-bert-ce-bin holds tiny-bert-ce's weights.
    assert_scores_like(&dir, "tiny-bert-ce");
}

#[test]
fn failures_are_clear() {
    no_proxies();
    // A repository with a config and a tokenizer but no weights.
    let no_weights = tempfile::tempdir().unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(
            model_src("tiny-bert-ce").join(file),
            no_weights.path().join(file),
        )
        .unwrap();
    }
    let hub = FakeHub::start(&[
        ("test-org/tiny-bert-ce", model_src("tiny-bert-ce")),
        ("test-org/no-weights", no_weights.path().to_path_buf()),
    ]);
    let home = tempfile::tempdir().unwrap();
    let online = settings(&hub.endpoint, home.path(), false);
    let offline = settings(&hub.endpoint, home.path(), true);

    // Offline and not cached.
    let err = resolve_model_with("test-org/never-downloaded", &offline).unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    let msg = message(&err);
    assert!(msg.contains("test-org/never-downloaded"), "{msg}");
    assert!(msg.contains("HF_HUB_OFFLINE"), "{msg}");
    assert_eq!(hub.count(), 0);

    // A repository that 404s everything: one request, an error naming it.
    let err = resolve_model_with("test-org/missing", &online).unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    let msg = message(&err);
    assert!(msg.contains("test-org/missing"), "{msg}");
    assert!(msg.contains("404"), "{msg}");
    assert!(msg.contains("RERANK_MODEL_PATH"), "{msg}");
    assert_eq!(hub.count(), 1);
    assert!(!home
        .path()
        .join("hub/models--test-org--missing/snapshots")
        .exists());

    // Private repository (401 RepoNotFound, as the hub answers anonymous requests).
    let msg = message(&resolve_model_with("test-org/private", &online).unwrap_err());
    assert!(
        msg.contains("test-org/private") && msg.contains("HF_TOKEN"),
        "{msg}"
    );

    // Unknown revision.
    let msg = message(&resolve_model_with("test-org/tiny-bert-ce@v9", &online).unwrap_err());
    assert!(
        msg.contains("test-org/tiny-bert-ce") && msg.contains("v9"),
        "{msg}"
    );

    // No weights at all.
    let msg = message(&resolve_model_with("test-org/no-weights", &online).unwrap_err());
    assert!(
        msg.contains("test-org/no-weights") && msg.contains("model.safetensors"),
        "{msg}"
    );

    // Hub unreachable and nothing cached.
    let dead = dead_endpoint();
    let err = resolve_model_with(
        "test-org/tiny-bert-ce",
        &settings(&dead, home.path(), false),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::Hub(_)), "{err:?}");
    let msg = message(&err);
    assert!(
        msg.contains(&dead) && msg.contains("test-org/tiny-bert-ce"),
        "{msg}"
    );

    // Neither a folder nor a hub id.
    for spec in [
        "./no/such/folder",
        "/no/such/folder",
        "a/b/c",
        "../x",
        "bad--id",
    ] {
        let before = hub.count();
        let err = resolve_model_with(spec, &online).unwrap_err();
        assert!(
            matches!(err, EngineError::NotFound { .. }),
            "{spec}: {err:?}"
        );
        let msg = message(&err);
        assert!(
            msg.contains("neither") && msg.contains("RERANK_MODEL_PATH"),
            "{spec}: {msg}"
        );
        assert_eq!(hub.count(), before, "{spec} must not reach the hub");
    }
}

#[test]
fn search_path_finds_last_component() {
    no_proxies();
    let home = tempfile::tempdir().unwrap();
    // Offline with an empty cache and no hub: any hub access would fail.
    let mut s = settings(&dead_endpoint(), home.path(), true);
    s.search_path = vec![PathBuf::from("/no/such/dir"), shared().join("models")];
    let want = shared().join("models/tiny-bert-ce");
    assert_eq!(
        resolve_model_with("someorg/tiny-bert-ce", &s).unwrap(),
        want
    );
    assert_eq!(resolve_model_with("tiny-bert-ce", &s).unwrap(), want);
    assert_scores_like(
        &resolve_model_with("someorg/tiny-bert-ce", &s).unwrap(),
        "tiny-bert-ce",
    );

    // Order: dir/spec before dir/<last component>, earlier folders first; a folder without
    // config.json is skipped.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(a.path().join("m")).unwrap(); // no config.json
    std::fs::create_dir_all(b.path().join("org/m")).unwrap();
    std::fs::write(b.path().join("org/m/config.json"), "{}").unwrap();
    std::fs::create_dir_all(b.path().join("m")).unwrap();
    std::fs::write(b.path().join("m/config.json"), "{}").unwrap();
    s.search_path = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    assert_eq!(
        resolve_model_with("org/m", &s).unwrap(),
        b.path().join("org/m")
    );
    assert_eq!(
        resolve_model_with("other/m", &s).unwrap(),
        b.path().join("m")
    );

    // Not on the search path: on to the (offline, empty) hub cache.
    let msg = message(&resolve_model_with("org/absent", &s).unwrap_err());
    assert!(
        msg.contains("org/absent") && msg.contains("HF_HUB_OFFLINE"),
        "{msg}"
    );
}

#[test]
fn hub_ids_and_settings_parse() {
    let id = HubId::parse("BAAI/bge-reranker-base").unwrap();
    assert_eq!(id.repo_id, "BAAI/bge-reranker-base");
    assert_eq!(id.revision(), "main");
    let id = HubId::parse("bert-base-uncased@refs/pr/1").unwrap();
    assert_eq!(id.repo_id, "bert-base-uncased");
    assert_eq!(id.revision(), "refs/pr/1");
    assert_eq!(id.to_string(), "bert-base-uncased@refs/pr/1");
    for bad in [
        "", "./model", "/abs/dir", "../x", "a/b/c", "a/../b", ".hidden", "a--b", "a/b@",
        "a/b@../x", "a/b@x y", "repo.git", "-a", "a/", "/a", "a b",
    ] {
        assert_eq!(HubId::parse(bad), None, "{bad:?}");
    }

    let s = ResolveSettings::from_lookup(|name| {
        match name {
            "HF_HOME" => Some("/tmp/hfhome"),
            "HF_ENDPOINT" => Some("http://127.0.0.1:9/"),
            "HF_TOKEN" => Some(" hf_abc "),
            "HF_HUB_OFFLINE" => Some("True"),
            "RERANK_MODEL_PATH" => Some("/a::/b"),
            _ => None,
        }
        .map(str::to_string)
    });
    assert_eq!(
        s.search_path,
        vec![PathBuf::from("/a"), PathBuf::from("/b")]
    );
    assert_eq!(s.hub.endpoint, "http://127.0.0.1:9");
    assert_eq!(s.hub.cache_dir, PathBuf::from("/tmp/hfhome/hub"));
    assert_eq!(s.hub.token.as_deref(), Some("hf_abc"));
    assert!(s.hub.offline && s.hub.progress);

    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap().to_string();
    std::fs::create_dir_all(home.path().join(".cache/huggingface")).unwrap();
    std::fs::write(home.path().join(".cache/huggingface/token"), "hf_file\n").unwrap();
    let s = HubSettings::from_lookup(|name| match name {
        "HOME" => Some(home_str.clone()),
        "HF_HUB_OFFLINE" => Some("0".into()),
        "HF_HUB_DISABLE_PROGRESS_BARS" => Some("1".into()),
        _ => None,
    });
    assert_eq!(s.endpoint, "https://huggingface.co");
    assert_eq!(s.cache_dir, home.path().join(".cache/huggingface/hub"));
    assert_eq!(s.token.as_deref(), Some("hf_file"));
    assert!(!s.offline && !s.progress);
    let s =
        HubSettings::from_lookup(|name| (name == "HF_HUB_CACHE").then(|| "/x/cache".to_string()));
    assert_eq!(s.cache_dir, PathBuf::from("/x/cache"));
}

/// The only test that reads the process environment: `resolve_model` itself.
#[test]
fn environment_variables() {
    no_proxies();
    let hub = FakeHub::start(&[("test-org/tiny-bert-ce", model_src("tiny-bert-ce"))]);
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("HF_ENDPOINT", format!("{}/", hub.endpoint));
    std::env::set_var("HF_HOME", home.path());
    std::env::set_var("HF_TOKEN", "hf_test_token");
    std::env::set_var("HF_HUB_DISABLE_PROGRESS_BARS", "1");
    std::env::remove_var("RERANK_MODEL_PATH");
    std::env::remove_var("HF_HUB_CACHE");
    std::env::remove_var("HF_HUB_OFFLINE");

    let s = ResolveSettings::from_env();
    assert_eq!(s.hub.endpoint, hub.endpoint);
    assert_eq!(s.hub.cache_dir, home.path().join("hub"));
    assert!(s.search_path.is_empty());

    let dir = resolve_model("test-org/tiny-bert-ce").unwrap();
    assert_eq!(dir, snapshot_dir(home.path(), "test-org/tiny-bert-ce"));
    let requests = hub.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer hf_test_token"),
            "{r:?}"
        );
    }

    // RERANK_MODEL_PATH comes before the hub.
    std::env::set_var("RERANK_MODEL_PATH", shared().join("models"));
    assert_eq!(
        ResolveSettings::from_env().search_path,
        vec![shared().join("models")]
    );
    assert_eq!(
        resolve_model("someorg/tiny-bert-ce").unwrap(),
        shared().join("models/tiny-bert-ce")
    );

    std::env::remove_var("RERANK_MODEL_PATH");
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let before = hub.count();
    assert_eq!(resolve_model("test-org/tiny-bert-ce").unwrap(), dir);
    let msg = message(&resolve_model("test-org/not-cached").unwrap_err());
    assert!(
        msg.contains("test-org/not-cached") && msg.contains("HF_HUB_OFFLINE"),
        "{msg}"
    );
    assert_eq!(hub.count(), before);

    for var in [
        "HF_ENDPOINT",
        "HF_HOME",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "RERANK_MODEL_PATH",
    ] {
        std::env::remove_var(var);
    }
}
