//! `rerank` with the Qwen3 LLM reranker: `info` shows the prompt template, the instruction and
//! the yes/no ids; `rank --instruction` gives the reference's custom-instruction logit; an
//! instruction for a model without a template is a clear error.

mod common;

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use common::{model, shared};

fn rerank(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn reference() -> Value {
    let p = shared().join("reference/expected-llm.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn info_shows_template_instruction_and_yes_no_ids() {
    let out = rerank(
        &["info", "--model", &model("tiny-qwen3-reranker"), "--json"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = reference();
    let e = &r["models"]["tiny-qwen3-reranker"];
    assert_eq!(v["architecture"], "Qwen3ForCausalLM");
    assert_eq!(v["yes_token_id"], e["yes_token_id"]);
    assert_eq!(v["no_token_id"], e["no_token_id"]);
    assert_eq!(v["instruction"], r["prompt"]["default_instruction"]);
    assert_eq!(v["prompt_template"]["prefix"], r["prompt"]["prefix"]);
    assert_eq!(v["accepts_instruction"], true);
    // The text form names them too.
    let out = rerank(&["info", "--model", &model("tiny-qwen3-reranker")], "");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("yes_token_id: 1584") && text.contains("prompt_template:"),
        "{text}"
    );
}

#[test]
fn rank_with_instruction_matches_the_reference() {
    let r = reference();
    let c = r["models"]["tiny-qwen3-reranker"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "custom_instruction")
        .unwrap()
        .clone();
    let doc = c["document"].as_str().unwrap();
    assert!(!doc.contains('\n'));
    let out = rerank(
        &[
            "rank",
            "--model",
            &model("tiny-qwen3-reranker"),
            "--query",
            c["query"].as_str().unwrap(),
            "--instruction",
            c["instruction"].as_str().unwrap(),
            "--json",
        ],
        &format!("{}\n", serde_json::json!({"text": doc})),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (got, want) = (
        v["logit"].as_f64().unwrap(),
        c["logits"][0].as_f64().unwrap(),
    );
    assert!((got - want).abs() <= 1e-4, "{got} vs {want}");
}

#[test]
fn instruction_for_a_model_without_template_is_a_clear_error() {
    let out = rerank(
        &[
            "rank",
            "--model",
            &model("tiny-bert-ce"),
            "--query",
            "q",
            "--instruction",
            "x",
        ],
        "doc\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("error: ") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(stderr.contains("no prompt template"), "{stderr}");
}
