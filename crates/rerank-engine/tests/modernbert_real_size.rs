//! A randomly initialised ModernBertForSequenceClassification with the shapes of
//! `../shared/models/configs/ModernBERT-base-reranker.config.json` (22 × 768, GeGLU 1152,
//! 50,368-row vocabulary, 8,192 positions, local window 128 with every 3rd layer global, mean
//! pooling), stored in F16 (~300 MB), with the tiny ModernBERT tokenizer of `../shared` (its
//! ids fit in the vocabulary): it must load, report its shape, and score 8 pairs of mixed
//! lengths up to 8,192 tokens in one batch exactly like one at a time. Prints the peak RSS
//! (`VmHWM`) of scoring one 8,192-token pair.
//!
//! Release-mode, opt-in: `cargo test --release -p rerank-engine --test modernbert_real_size
//! -- --ignored --nocapture` (CI runs the ignored tests in release).

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use rerank_engine::config::Family;
use rerank_engine::{CrossEncoder, CrossEncoderOptions};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::Value;

/// xorshift64*: cheap, deterministic, good enough for random weights.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Sum of two uniforms (triangular, close enough to a normal) with standard deviation `std`.
    fn normalish(&mut self, std: f32) -> f32 {
        (self.unit() + self.unit()) * std * (1.5f32).sqrt()
    }
}

enum Init {
    Normal,
    Ones,
    Zeros,
}

/// Name, shape and initialisation of every parameter transformers'
/// `ModernBertForSequenceClassification` has with `norm_bias`, `attention_bias`, `mlp_bias`
/// and `classifier_bias` false (the config's values): no biases but the classifier's.
fn modernbert_tensors(cfg: &Value) -> Vec<(String, Vec<usize>, Init)> {
    let u = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let (h, i) = (u("hidden_size"), u("intermediate_size"));
    let mut t = vec![
        (
            "model.embeddings.tok_embeddings.weight".to_string(),
            vec![u("vocab_size"), h],
            Init::Normal,
        ),
        ("model.embeddings.norm.weight".into(), vec![h], Init::Ones),
    ];
    for n in 0..u("num_hidden_layers") {
        let p = format!("model.layers.{n}");
        if n > 0 {
            t.push((format!("{p}.attn_norm.weight"), vec![h], Init::Ones));
        }
        t.push((
            format!("{p}.attn.Wqkv.weight"),
            vec![3 * h, h],
            Init::Normal,
        ));
        t.push((format!("{p}.attn.Wo.weight"), vec![h, h], Init::Normal));
        t.push((format!("{p}.mlp_norm.weight"), vec![h], Init::Ones));
        t.push((format!("{p}.mlp.Wi.weight"), vec![2 * i, h], Init::Normal));
        t.push((format!("{p}.mlp.Wo.weight"), vec![h, i], Init::Normal));
    }
    t.push(("model.final_norm.weight".into(), vec![h], Init::Ones));
    t.push(("head.dense.weight".into(), vec![h, h], Init::Normal));
    t.push(("head.norm.weight".into(), vec![h], Init::Ones));
    t.push(("classifier.weight".into(), vec![1, h], Init::Normal));
    t.push(("classifier.bias".into(), vec![1], Init::Zeros));
    t
}

/// Writes `model.safetensors` in F16 with random weights; returns the parameter count.
fn write_random_f16_checkpoint(cfg: &Value, path: &Path) -> usize {
    let specs = modernbert_tensors(cfg);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let std = 0.02f32;
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(specs.len());
    let mut params = 0;
    for (name, shape, init) in specs {
        let n: usize = shape.iter().product();
        params += n;
        let mut bytes = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let x = match init {
                Init::Normal => rng.normalish(std),
                Init::Ones => 1.0,
                Init::Zeros => 0.0,
            };
            bytes.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
        }
        buffers.push((name, shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::F16, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize_to_file(views, Some(meta), path).unwrap();
    params
}

/// `VmHWM` (peak resident set) of this process in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0: write 5 to `clear_refs`).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Eight pairs of mixed lengths; pair 0 exceeds 8,192 tokens and is truncated to it.
fn pairs(speech: &str) -> Vec<(String, String)> {
    let cut = |from: usize, len: usize| -> String { speech.chars().skip(from).take(len).collect() };
    let twice = format!("{speech}\n{speech}");
    vec![
        ("What is the plan for the economy?".into(), twice),
        ("Hello".into(), "Hello world".into()),
        (cut(10_000, 2000), cut(20_000, 10_000)),
        (
            "경제 계획은 무엇입니까?".into(),
            "정부는 일자리와 성장을 위한 예산을 발표했다.".into(),
        ),
        ("What is the plan?".into(), String::new()),
        ("inflation and prices".into(), cut(30_000, 3000)),
        ("jobs".into(), cut(5_000, 600)),
        (String::new(), "the state of the Union is strong".into()),
    ]
}

#[test]
#[ignore = "release-mode size test: cargo test --release -- --ignored"]
fn modernbert_base_sized_random_model_scores_8192_token_pairs_consistently() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let cfg_text = std::fs::read_to_string(
        shared().join("models/configs/ModernBERT-base-reranker.config.json"),
    )
    .unwrap();
    let cfg: Value = serde_json::from_str(&cfg_text).unwrap();
    assert_eq!(
        cfg["architectures"][0],
        "ModernBertForSequenceClassification"
    );
    std::fs::write(dir.join("config.json"), &cfg_text).unwrap();
    let tok_dir = model_dir("tiny-modernbert-ce");
    std::fs::copy(tok_dir.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let mut tok_cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(tok_dir.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    tok_cfg["model_max_length"] = 8192.into();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tok_cfg).unwrap(),
    )
    .unwrap();

    let weights = dir.join("model.safetensors");
    let params = write_random_f16_checkpoint(&cfg, &weights);
    let size = std::fs::metadata(&weights).unwrap().len();
    eprintln!(
        "wrote {params} parameters, {:.0} MB, in {:.1?}",
        size as f64 / 1e6,
        t0.elapsed()
    );
    // Hand count: embeddings 50368·768 + 768; 22 layers of Wqkv 3·768·768, Wo 768·768,
    // Wi 2·1152·768, Wo 768·1152 and two norms (layer 0 has no attn_norm); final norm 768;
    // head 768·768 + 768; classifier 768 + 1 ("149M params" on the ModernBERT-base card).
    assert_eq!(
        params, 149_605_633,
        "parameter count of ModernBERT-base + head"
    );

    let t1 = Instant::now();
    let ce = CrossEncoder::from_dir(dir, CrossEncoderOptions::default()).unwrap();
    eprintln!("loaded in {:.1?}", t1.elapsed());
    let info = ce.info();
    assert_eq!(info.architecture, "ModernBertForSequenceClassification");
    assert_eq!(info.family, Family::named("ModernBert"));
    assert_eq!(info.num_labels, 1);
    assert_eq!(info.max_length, 8192);
    assert_eq!(info.max_positions, 8192);
    assert_eq!(info.hidden_size, 768);
    assert_eq!(info.num_hidden_layers, 22);
    assert_eq!(info.vocab_size, 50_368);
    assert_eq!(info.stored_dtype, "F16");

    let speech = std::fs::read_to_string(shared().join("data/state_of_the_union.txt")).unwrap();
    let owned = pairs(&speech);
    let pairs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();
    let encoded = ce.encode(&pairs, None).unwrap();
    let lengths: Vec<usize> = encoded.iter().map(|e| e.input_ids.len()).collect();
    eprintln!("token counts: {lengths:?}");
    assert_eq!(lengths[0], 8192, "pair 0 truncated to 8,192 tokens");
    assert!(encoded[0].truncated);
    assert_eq!(
        encoded.iter().filter(|e| e.truncated).count(),
        1,
        "only pair 0 is longer than 8,192 tokens"
    );
    assert!(lengths[2] > 2000, "pair 2 is long: {}", lengths[2]);

    // Peak RSS of one 8,192-token pair, from the loaded model's resident set.
    let after_load = peak_rss_kib();
    let reset = reset_peak_rss();
    let t2 = Instant::now();
    let long = ce.predict_batch(&encoded[..1]).unwrap().remove(0);
    let peak = peak_rss_kib();
    eprintln!(
        "one 8192-token pair scored in {:.1?}; VmHWM after load {:.0} MiB, while scoring it {:.0} MiB{}",
        t2.elapsed(),
        after_load as f64 / 1024.0,
        peak as f64 / 1024.0,
        if reset { "" } else { " (clear_refs unavailable: peak since start)" }
    );

    let t3 = Instant::now();
    let batched = ce.predict_batch(&encoded).unwrap();
    eprintln!("batch of {} scored in {:.1?}", pairs.len(), t3.elapsed());
    let t4 = Instant::now();
    // Pair 0 alone was scored above; the other pairs one at a time (an 8,192-token pass
    // costs more than the other seven pairs together, so it is not repeated).
    let singles: Vec<_> = std::iter::once(long)
        .chain(
            encoded[1..]
                .iter()
                .map(|e| ce.predict_batch(std::slice::from_ref(e)).unwrap().remove(0)),
        )
        .collect();
    eprintln!("{} singles scored in {:.1?}", pairs.len() - 1, t4.elapsed());

    let scores: Vec<f32> = batched.iter().map(|p| p.score).collect();
    eprintln!("scores: {scores:?}");
    for (k, p) in batched.iter().enumerate() {
        assert_eq!(p.logits.len(), 1, "pair {k}");
        assert!(p.logits[0].is_finite(), "pair {k}: logit {:?}", p.logits);
    }
    let (min, max) = scores
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &s| {
            (a.min(s), b.max(s))
        });
    assert!(
        max - min > 1e-4,
        "scores are (nearly) all identical: {scores:?}"
    );
    let max_diff = batched
        .iter()
        .zip(&singles)
        .map(|(b, s)| (b.logits[0] - s.logits[0]).abs())
        .fold(0.0f32, f32::max);
    eprintln!("max |batched - single| logit: {max_diff:e}");
    for (k, (b, s)) in batched.iter().zip(&singles).enumerate() {
        assert_close(
            &b.logits,
            &s.logits,
            1e-5,
            &format!("pair {k}: batched vs single logit"),
        );
    }
    eprintln!("total {:.1?}", t0.elapsed());
}
