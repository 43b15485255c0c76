//! A randomly initialised XLMRobertaForSequenceClassification with the exact configuration of
//! BAAI/bge-reranker-base (12 × 768, 250,002-row vocabulary, 514 positions), stored in F16 like
//! a real ~560 MB checkpoint, with the XLM-R-pipeline tokenizer of `../shared`: it must load,
//! report the right shape, and score a batch of long and short pairs (some truncated at 512
//! tokens) exactly like the same pairs scored one at a time.

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
        // Var(U(-1,1)) = 1/3, so Var(u1 + u2) = 2/3.
        (self.unit() + self.unit()) * std * (1.5f32).sqrt()
    }
}

enum Init {
    Normal,
    Ones,
    Zeros,
}

/// Name, shape and initialisation of every parameter transformers'
/// `XLMRobertaForSequenceClassification` has (no pooler: `add_pooling_layer=False`).
fn xlmr_tensors(cfg: &Value, num_labels: usize) -> Vec<(String, Vec<usize>, Init)> {
    let u = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let (h, i) = (u("hidden_size"), u("intermediate_size"));
    let mut t = Vec::new();
    let linear = |t: &mut Vec<_>, name: &str, out: usize, inp: usize| {
        t.push((format!("{name}.weight"), vec![out, inp], Init::Normal));
        t.push((format!("{name}.bias"), vec![out], Init::Zeros));
    };
    let layer_norm = |t: &mut Vec<_>, name: &str| {
        t.push((format!("{name}.weight"), vec![h], Init::Ones));
        t.push((format!("{name}.bias"), vec![h], Init::Zeros));
    };
    let e = "roberta.embeddings";
    t.push((
        format!("{e}.word_embeddings.weight"),
        vec![u("vocab_size"), h],
        Init::Normal,
    ));
    t.push((
        format!("{e}.position_embeddings.weight"),
        vec![u("max_position_embeddings"), h],
        Init::Normal,
    ));
    t.push((
        format!("{e}.token_type_embeddings.weight"),
        vec![u("type_vocab_size"), h],
        Init::Normal,
    ));
    layer_norm(&mut t, &format!("{e}.LayerNorm"));
    for n in 0..u("num_hidden_layers") {
        let p = format!("roberta.encoder.layer.{n}");
        for qkv in ["query", "key", "value"] {
            linear(&mut t, &format!("{p}.attention.self.{qkv}"), h, h);
        }
        linear(&mut t, &format!("{p}.attention.output.dense"), h, h);
        layer_norm(&mut t, &format!("{p}.attention.output.LayerNorm"));
        linear(&mut t, &format!("{p}.intermediate.dense"), i, h);
        linear(&mut t, &format!("{p}.output.dense"), h, i);
        layer_norm(&mut t, &format!("{p}.output.LayerNorm"));
    }
    linear(&mut t, "classifier.dense", h, h);
    linear(&mut t, "classifier.out_proj", num_labels, h);
    t
}

/// Writes `model.safetensors` in F16 with random weights; returns the parameter count.
fn write_random_f16_checkpoint(cfg: &Value, path: &Path) -> usize {
    let specs = xlmr_tensors(cfg, 1);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let std = cfg["initializer_range"].as_f64().unwrap_or(0.02) as f32;
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

/// Eight pairs of mixed lengths; pairs 0 and 2 exceed 512 tokens and must be truncated.
fn pairs(speech: &str) -> Vec<(String, String)> {
    let cut = |from: usize, len: usize| -> String { speech.chars().skip(from).take(len).collect() };
    vec![
        ("What is the plan for the economy?".into(), cut(0, 8000)),
        ("Hello".into(), "Hello world".into()),
        (cut(10_000, 4000), cut(20_000, 4000)),
        (
            "경제 계획은 무엇입니까?".into(),
            "정부는 일자리와 성장을 위한 예산을 발표했다. 리랭커는 질문과 문서를 함께 인코딩한다."
                .into(),
        ),
        ("What is the plan?".into(), String::new()),
        ("inflation and prices".into(), cut(30_000, 1200)),
        ("jobs".into(), cut(5_000, 300)),
        (String::new(), "the state of the Union is strong".into()),
    ]
}

// About 65 s in the dev test profile on 2 shared cores (scoring one 8 × 512 padded batch of a
// 278M-parameter model dominates), so it is opt-in.
#[test]
#[ignore = "release-mode size test: cargo test --release -- --ignored"]
fn bge_reranker_base_sized_random_model_scores_consistently() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let cfg_text =
        std::fs::read_to_string(shared().join("models/configs/bge-reranker-base.config.json"))
            .unwrap();
    let cfg: Value = serde_json::from_str(&cfg_text).unwrap();
    assert_eq!(
        cfg["architectures"][0],
        "XLMRobertaForSequenceClassification"
    );
    std::fs::write(dir.join("config.json"), &cfg_text).unwrap();

    let tok_dir = model_dir("xlm-roberta-tokenizer");
    std::fs::copy(tok_dir.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let mut tok_cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(tok_dir.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    tok_cfg["model_max_length"] = 512.into();
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
    // Hand count: embeddings 250002·768 + 514·768 + 768 + 2·768, 12 layers of 7,087,872,
    // classifier 768·768 + 768 + 768 + 1 ("278M params" on the model card).
    assert_eq!(params, 278_044_417, "parameter count of bge-reranker-base");
    assert!(size > 550_000_000 && size < 570_000_000, "{size} bytes");

    let t1 = Instant::now();
    let ce = CrossEncoder::from_dir(dir, CrossEncoderOptions::default()).unwrap();
    eprintln!("loaded in {:.1?}", t1.elapsed());
    let info = ce.info();
    assert_eq!(info.architecture, "XLMRobertaForSequenceClassification");
    assert_eq!(info.family, Family::XlmRoberta);
    assert_eq!(info.num_labels, 1);
    assert_eq!(info.max_length, 512);
    assert_eq!(info.max_positions, 512);
    assert_eq!(info.hidden_size, 768);
    assert_eq!(info.num_hidden_layers, 12);
    assert_eq!(info.vocab_size, 250_002);
    assert_eq!(info.stored_dtype, "F16");
    assert_eq!(info.score_activation, "sigmoid");

    let speech = std::fs::read_to_string(shared().join("data/state_of_the_union.txt")).unwrap();
    let owned = pairs(&speech);
    let pairs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();

    let encoded = ce.encode(&pairs, None).unwrap();
    let lengths: Vec<usize> = encoded.iter().map(|e| e.input_ids.len()).collect();
    eprintln!("token counts: {lengths:?}");
    for (k, e) in encoded.iter().enumerate() {
        assert!(
            e.input_ids.len() <= 512,
            "pair {k}: {} tokens",
            e.input_ids.len()
        );
        assert!(
            e.input_ids.iter().all(|&id| id < 8002),
            "pair {k}: id outside the vocab"
        );
        assert_eq!(e.input_ids[0], 0, "pair {k}: starts with <s>");
        assert_eq!(*e.input_ids.last().unwrap(), 2, "pair {k}: ends with </s>");
    }
    for k in [0, 2] {
        assert!(encoded[k].truncated, "pair {k} should be truncated");
        assert_eq!(lengths[k], 512, "pair {k} truncated to max_length");
    }
    assert_eq!(
        encoded.iter().filter(|e| e.truncated).count(),
        2,
        "only pairs 0 and 2 are long"
    );
    assert_eq!(
        encoded[4].input_ids[encoded[4].input_ids.len() - 3..],
        [2, 2, 2],
        "empty document keeps both separators"
    );

    let t2 = Instant::now();
    let batched = ce.predict(&pairs).unwrap();
    eprintln!("batch of {} scored in {:.1?}", pairs.len(), t2.elapsed());
    let t3 = Instant::now();
    let singles: Vec<_> = pairs
        .iter()
        .map(|p| ce.predict(std::slice::from_ref(p)).unwrap().remove(0))
        .collect();
    eprintln!("{} singles scored in {:.1?}", pairs.len(), t3.elapsed());

    let scores: Vec<f32> = batched.iter().map(|p| p.score).collect();
    eprintln!("scores: {scores:?}");
    for (k, p) in batched.iter().enumerate() {
        assert_eq!(p.logits.len(), 1, "pair {k}");
        assert!(p.logits[0].is_finite(), "pair {k}: logit {:?}", p.logits);
        assert!(
            p.score.is_finite() && p.score > 0.0 && p.score < 1.0,
            "pair {k}: score {}",
            p.score
        );
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
        assert_close(
            &[b.score],
            &[s.score],
            1e-5,
            &format!("pair {k}: batched vs single score"),
        );
    }
    eprintln!("total {:.1?}", t0.elapsed());
}
