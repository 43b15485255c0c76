//! `rerank`: two-stage retrieval with cross-encoder rerankers, from the command line.
//!
//! Errors go to stderr as one `error: …` line (each cause once) with a non-zero exit code,
//! never a backtrace.

mod commands;
mod input;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rerank",
    version,
    about = "Cross-encoder reranking and two-stage retrieval"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chunk files, embed the passages with a bi-encoder and add them to a persistent index.
    Index(commands::index::Args),
    /// Two-stage search: first stage top-k (dense, BM25 or hybrid), cross-encoder top-n.
    Search(commands::search::Args),
    /// Embed texts with a bi-encoder.
    Embed(commands::embed::Args),
    /// Score (query, document) pairs from a JSONL file with a cross-encoder.
    Score(commands::score::Args),
    /// Rank documents (one per line, or JSONL {"text": ...}) against a query.
    Rank(commands::rank::Args),
    /// Show what a model folder or hub id holds: architecture, labels, max length, dtype.
    Info(commands::info::Args),
    /// HTTP server: TEI-, Cohere- and OpenAI-compatible rerank / embed routes and /search.
    Serve(commands::serve::Args),
    /// Retrieval quality on a BEIR set: nDCG@10, MRR@10, Recall@10/100 before and after reranking.
    Eval(commands::eval::Args),
    /// Time `rank` (1 query × N documents): pairs/s, ms/query, GFLOP/s against the fp32 peak.
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Index(a) => commands::index::run(a),
        Command::Search(a) => commands::search::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::Score(a) => commands::score::run(a),
        Command::Rank(a) => commands::rank::run(a),
        Command::Info(a) => commands::info::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Bench(a) => commands::bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `": "`, each cause once: a cause whose text the message
/// already holds (an error whose `Display` embeds its source, e.g. `path: No such file or
/// directory (os error 2)`) is not repeated.
fn error_message(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
