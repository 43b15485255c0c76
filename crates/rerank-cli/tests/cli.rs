//! The `rerank` binary end to end on the real cross-encoder: outputs compared with the PyTorch
//! reference in `../shared/reference`, and clear errors (no panic) for bad input.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use common::{model, shared};

fn reference() -> Value {
    let p = shared().join("reference/expected-minilm-l6-sotu-ce.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn rerank(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // The child may exit before reading stdin (e.g. on a usage error): ignore EPIPE.
    let _ = pipe.write_all(stdin.unwrap_or("").as_bytes());
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Asserts a failed run with one clear `error:` line containing every `needle`, no panic.
fn assert_clear_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}: {stderr}");
    }
}

#[test]
fn score_json_matches_pytorch_on_the_real_cross_encoder() {
    let reference = reference();
    let cases = reference["models"]["minilm-l6-sotu-ce"]["cases"]
        .as_array()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    let mut f = std::fs::File::create(&pairs).unwrap();
    for c in cases {
        let line = serde_json::json!({"query": c["query"], "document": c["document"]});
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let out = rerank(
        &[
            "score",
            "--model",
            &model("minilm-l6-sotu-ce"),
            "--pairs",
            pairs.to_str().unwrap(),
            "--json",
            "--batch-size",
            "7",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cases.len());
    for (i, (line, case)) in lines.iter().zip(cases).enumerate() {
        assert_eq!(line["index"], i);
        assert_eq!(line["input_ids"], case["input_ids"], "case {i}: input_ids");
        let got = line["logits"][0].as_f64().unwrap();
        let want = case["logits"][0].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-4,
            "case {i}: logit {got} vs {want}"
        );
        let got = line["score"].as_f64().unwrap();
        let want = case["score"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-4,
            "case {i}: score {got} vs {want}"
        );
    }
}

#[test]
fn rank_reproduces_the_economy_question_top3() {
    let reference = reference();
    let rc = &reference["models"]["minilm-l6-sotu-ce"]["rank_cases"][0];
    assert_eq!(rc["query"], "What is the plan for the economy?");
    let stdin: String = rc["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{}\n", serde_json::json!({"text": d})))
        .collect();
    let out = rerank(
        &[
            "rank",
            "--model",
            &model("minilm-l6-sotu-ce"),
            "--query",
            "What is the plan for the economy?",
            "--top-n",
            "3",
            "--json",
        ],
        Some(&stdin),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = rc["expected"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["index"], w["index"]);
        assert!((g["logit"].as_f64().unwrap() - w["logit"].as_f64().unwrap()).abs() <= 1e-4);
        assert_eq!(
            g["text"],
            rc["documents"][w["index"].as_u64().unwrap() as usize]
        );
    }
}

#[test]
fn rank_reads_plain_lines_and_prints_rank_score_text() {
    let out = rerank(
        &[
            "rank",
            "--model",
            &model("tiny-bert-ce"),
            "--query",
            "q",
            "--top-n",
            "2",
        ],
        Some("first document\n\nsecond document\nthird document\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("1\t") && lines[1].starts_with("2\t"),
        "{text}"
    );
}

#[test]
fn info_reports_labels_length_and_dtype() {
    let out = rerank(&["info", "--model", &model("tiny-xlmr-ce"), "--json"], None);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["architecture"], "XLMRobertaForSequenceClassification");
    assert_eq!(v["num_labels"], 1);
    assert_eq!(v["max_length"], 128);
    assert_eq!(v["stored_dtype"], "F16");
}

#[test]
fn bi_encoder_folder_is_refused_clearly() {
    let out = rerank(&["info", "--model", &model("all-MiniLM-L6-v2")], None);
    assert_clear_error(
        &out,
        &["classifier.weight", "bi-encoder", "model.safetensors"],
    );
}

#[test]
fn missing_model_folder_is_refused_clearly() {
    let out = rerank(
        &["rank", "--model", "/no/such/model", "--query", "q"],
        Some("doc\n"),
    );
    assert_clear_error(&out, &["/no/such/model"]);
}

#[test]
fn malformed_jsonl_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("bad.jsonl");
    std::fs::write(
        &pairs,
        "{\"query\": \"q\", \"document\": \"d\"}\n{not json\n",
    )
    .unwrap();
    let out = rerank(
        &[
            "score",
            "--model",
            &model("tiny-bert-ce"),
            "--pairs",
            pairs.to_str().unwrap(),
        ],
        None,
    );
    assert_clear_error(&out, &["bad.jsonl:2"]);

    let out = rerank(
        &["rank", "--model", &model("tiny-bert-ce"), "--query", "q"],
        Some("{\"text\": \"ok\"}\n{\"title\": \"no text\"}\n"),
    );
    assert_clear_error(&out, &["<stdin>:2", "\"text\""]);
}

#[test]
fn top_n_zero_is_an_error() {
    let out = rerank(
        &[
            "rank",
            "--model",
            &model("tiny-bert-ce"),
            "--query",
            "q",
            "--top-n",
            "0",
        ],
        Some("d\n"),
    );
    assert_clear_error(&out, &["top-n"]);
}
