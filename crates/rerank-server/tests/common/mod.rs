//! Shared helpers: start the real server in-process on a loopback port, find `../shared`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use rerank_engine::{CrossEncoder, Embedder};
use rerank_server::{AppState, Models, Named, ServerConfig};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `../shared` beside the repository clone (override with `RERANK_SHARED`).
pub fn shared() -> PathBuf {
    std::env::var_os("RERANK_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

pub fn model_dir(name: &str) -> PathBuf {
    shared().join("models").join(name)
}

pub fn load_json(rel: &str) -> Value {
    let path = shared().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn reranker(name: &str) -> Named<CrossEncoder> {
    Named {
        name: name.into(),
        model: Arc::new(CrossEncoder::from_dir(model_dir(name), Default::default()).unwrap()),
    }
}

pub fn embedder(name: &str) -> Named<Embedder> {
    Named {
        name: name.into(),
        model: Arc::new(Embedder::from_dir(model_dir(name), Default::default()).unwrap()),
    }
}

/// A running server: its base URL, its state, and how to stop it.
pub struct Server {
    pub url: String,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), rerank_server::ServerError>>>,
}

impl Server {
    pub async fn start(config: ServerConfig, models: Models) -> Server {
        let state = AppState::new(config, models);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rerank_server::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            url,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The default test server: tiny-bert-ce reranker + tiny-bert-embedder.
    pub async fn tiny(config: ServerConfig) -> Server {
        Server::start(
            config,
            Models {
                reranker: Some(reranker("tiny-bert-ce")),
                embedder: Some(embedder("tiny-bert-embedder")),
                index: None,
            },
        )
        .await
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Completes the shutdown future (as SIGTERM does for `rerank serve`) without waiting:
    /// the server drains for `ServerConfig::drain`, then stops.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server to return (after [`Server::begin_shutdown`]).
    pub async fn stopped(mut self) {
        self.task.take().unwrap().await.unwrap().unwrap();
    }

    /// Triggers graceful shutdown and waits for the server to return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// POSTs JSON and returns (status, body as JSON).
pub async fn post(c: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Asserts an error response: status, JSON `{error, error_type}`, and that `error` mentions
/// `needle`.
pub fn assert_error(resp: &(u16, Value), status: u16, error_type: &str, needle: &str) {
    assert_eq!(resp.0, status, "{:?}", resp.1);
    assert_eq!(resp.1["error_type"], error_type, "{:?}", resp.1);
    let msg = resp.1["error"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
}
