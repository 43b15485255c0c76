//! Ingestion: text / markdown / JSONL / BEIR files and folders, errors with file and line, and
//! the shared State of the Union data.

use std::fs;
use std::path::{Path, PathBuf};

use rerank_retrieval::ingest::{read_path, read_paths, SourceDocument};
use rerank_retrieval::RetrievalError;
use serde_json::{json, Map, Value};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
}

fn ids(docs: &[SourceDocument]) -> Vec<&str> {
    docs.iter().map(|d| d.id.as_str()).collect()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Asserts a `BadInput` for `file` at `line` whose reason contains `needle`.
fn assert_bad_input(
    result: Result<Vec<SourceDocument>, RetrievalError>,
    file: &Path,
    line: usize,
    needle: &str,
) {
    match result {
        Err(RetrievalError::BadInput {
            path,
            line: l,
            reason,
        }) => {
            assert_eq!(path, file, "{reason}");
            assert_eq!(l, line, "{reason}");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!(
            "expected BadInput at {}:{line}, got {other:?}",
            file.display()
        ),
    }
}

#[test]
fn folder_is_walked_sorted_and_recursively() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("b.txt"), "bravo text\n");
    write(&root.join("a.md"), "# Alpha\n\nmarkdown");
    write(&root.join("sub/c.markdown"), "charlie");
    write(&root.join("sub/deeper/d.TXT"), "delta");
    write(&root.join("e.jsonl"), r#"{"id": "e1", "text": "echo"}"#);
    // Skipped: hidden files and folders, other extensions, empty / blank documents.
    write(&root.join(".hidden.txt"), "hidden");
    write(&root.join(".git/config.txt"), "hidden folder");
    write(&root.join("notes.csv"), "a,b\n1,2");
    write(
        &root.join("image.png"),
        [0x89, b'P', b'N', b'G', 0xff, 0xfe],
    );
    write(&root.join("no_extension"), "plain");
    write(&root.join("empty.txt"), "");
    write(&root.join("blank.md"), " \n\t\r\n ");

    let docs = read_path(root).unwrap();
    let expected: Vec<String> = ["a.md", "b.txt", "e1", "sub/c.markdown", "sub/deeper/d.TXT"]
        .iter()
        .map(|name| {
            if *name == "e1" {
                "e1".to_string()
            } else {
                root.join(name).to_string_lossy().into_owned()
            }
        })
        .collect();
    assert_eq!(ids(&docs), expected);
    let alpha = &docs[0];
    assert_eq!(alpha.text, "# Alpha\n\nmarkdown");
    assert_eq!(alpha.metadata, object(json!({ "source": alpha.id })));
    assert_eq!(docs[1].text, "bravo text\n", "text is kept verbatim");

    // A single file is read as given, whatever its extension; its id is the path as given.
    let file = root.join("no_extension");
    let docs = read_path(&file).unwrap();
    assert_eq!(ids(&docs), [file.to_string_lossy()]);
    assert_eq!(docs[0].metadata["source"], json!(file.to_string_lossy()));

    // A relative path as given stays relative in the ids (tests run in the package folder).
    assert_eq!(
        read_path(Path::new("Cargo.toml")).unwrap()[0].id,
        "Cargo.toml"
    );
    let docs = read_path(Path::new("tests/../src/../src")).unwrap();
    assert!(docs
        .iter()
        .all(|d| d.id.starts_with("tests/../src/../src/")));
}

#[test]
fn jsonl_records_keep_their_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docs.jsonl");
    let meta = json!({"lang": "en", "tags": ["a", "b"], "nested": {"x": 1.5, "y": null}, "source": "s3://bucket/k"});
    let lines = [
        json!({"id": "d1", "text": "first document", "metadata": meta}).to_string(),
        String::new(),
        "   ".to_string(),
        json!({"id": 42, "text": "numeric id", "metadata": null}).to_string(),
        json!({"id": "d3", "text": "extra fields", "url": "http://x", "metadata": {"url": "kept"}}).to_string(),
        json!({"id": "blank", "text": "  \n "}).to_string(),
        json!({"id": "d4", "text": "no metadata", "title": "plain records keep titles as metadata"}).to_string(),
    ];
    // CRLF line ends and a byte-order mark are accepted.
    write(&file, format!("\u{feff}{}\r\n", lines.join("\r\n")));
    let docs = read_path(&file).unwrap();
    assert_eq!(ids(&docs), ["d1", "42", "d3", "d4"]);
    assert_eq!(docs[0].text, "first document");
    assert_eq!(
        Value::Object(docs[0].metadata.clone()),
        meta,
        "metadata unchanged"
    );
    assert!(docs[1].metadata.is_empty());
    assert_eq!(
        docs[2].metadata,
        object(json!({"url": "kept"})),
        "metadata wins over extra fields"
    );
    assert_eq!(docs[3].text, "no metadata");
    assert_eq!(
        docs[3].metadata,
        object(json!({"title": "plain records keep titles as metadata"}))
    );
}

#[test]
fn beir_corpus_records() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corpus.jsonl");
    let lines = [
        json!({"_id": "doc1", "title": "A Title", "text": "Body text.", "metadata": {"year": 1999}}),
        json!({"_id": "doc2", "title": "", "text": "No title."}),
        json!({"_id": "doc3", "title": "Only a title", "text": ""}),
        json!({"_id": "doc4", "title": "", "text": ""}),
        json!({"_id": "doc5", "text": "No title field.", "url": "http://example.org"}),
    ];
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    write(&file, body.join("\n"));
    let docs = read_path(&file).unwrap();
    assert_eq!(
        ids(&docs),
        ["doc1", "doc2", "doc3", "doc5"],
        "empty doc4 is skipped"
    );
    assert_eq!(docs[0].text, "A Title\n\nBody text.");
    assert_eq!(
        docs[0].metadata,
        object(json!({"title": "A Title", "year": 1999}))
    );
    assert_eq!(docs[1].text, "No title.");
    assert_eq!(docs[1].metadata, object(json!({"title": ""})));
    assert_eq!(docs[2].text, "Only a title");
    assert_eq!(
        docs[3].metadata,
        object(json!({"url": "http://example.org"}))
    );
}

#[test]
fn malformed_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();

    let file = root.join("bad.jsonl");
    write(
        &file,
        "{\"id\": \"a\", \"text\": \"ok\"}\n\n{\"id\": \"b\", \"text\": \n",
    );
    assert_bad_input(read_path(&file), &file, 3, "invalid JSON");
    // The same error when the file is found by walking the folder.
    assert_bad_input(read_path(root), &file, 3, "invalid JSON");

    let cases: [(&str, &str); 7] = [
        ("[1, 2]", "JSON object"),
        (r#"{"text": "no id"}"#, "missing \"id\""),
        (r#"{"id": "x"}"#, "missing \"text\""),
        (r#"{"id": "x", "text": 3}"#, "\"text\" must be a string"),
        (r#"{"id": ["x"], "text": "t"}"#, "string or a number"),
        (
            r#"{"id": "x", "text": "t", "metadata": [1]}"#,
            "must be an object",
        ),
        (
            r#"{"_id": "x", "title": 7, "text": "t"}"#,
            "\"title\" must be a string",
        ),
    ];
    for (record, needle) in cases {
        let file = root.join("case.jsonl");
        write(
            &file,
            format!("{{\"id\": \"fine\", \"text\": \"fine\"}}\n{record}\n"),
        );
        assert_bad_input(read_path(&file), &file, 2, needle);
    }

    // Not UTF-8: the line of the first invalid byte.
    let file = root.join("latin1.txt");
    write(&file, b"line one\nline two\nline caf\xe9\n".as_slice());
    assert_bad_input(read_path(&file), &file, 3, "not UTF-8");
    let file = root.join("latin1.jsonl");
    write(
        &file,
        b"{\"id\": \"a\", \"text\": \"caf\xe9\"}\n".as_slice(),
    );
    assert_bad_input(read_path(&file), &file, 1, "not UTF-8");

    // A missing path is an I/O error naming it.
    let missing = root.join("missing");
    match read_path(&missing) {
        Err(RetrievalError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn duplicate_ids_are_errors_naming_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let one = root.join("one.jsonl");
    write(&one, "{\"id\": \"x\", \"text\": \"a\"}\n{\"id\": \"y\", \"text\": \"b\"}\n{\"id\": \"x\", \"text\": \"c\"}\n");
    match read_path(&one) {
        Err(RetrievalError::BadInput { path, line, reason }) => {
            assert_eq!((path.as_path(), line), (one.as_path(), 3));
            assert!(reason.contains("duplicate id \"x\""), "{reason}");
            assert!(reason.contains(&format!("{}:1", one.display())), "{reason}");
        }
        other => panic!("expected a duplicate error, got {other:?}"),
    }

    // Across files, through read_paths (and a BEIR `_id` clashes with a plain `id`).
    let a = root.join("a.jsonl");
    let b = root.join("b.jsonl");
    write(
        &a,
        "{\"id\": \"p\", \"text\": \"a\"}\n{\"id\": \"q\", \"text\": \"b\"}\n",
    );
    write(&b, "{\"_id\": \"r\", \"title\": \"\", \"text\": \"c\"}\n{\"_id\": \"q\", \"title\": \"\", \"text\": \"d\"}\n");
    let docs = read_paths(std::slice::from_ref(&a)).unwrap();
    assert_eq!(ids(&docs), ["p", "q"]);
    match read_paths(&[a.clone(), b.clone()]) {
        Err(RetrievalError::BadInput { path, line, reason }) => {
            assert_eq!((path.as_path(), line), (b.as_path(), 2));
            assert!(reason.contains(&format!("{}:2", a.display())), "{reason}");
        }
        other => panic!("expected a duplicate error, got {other:?}"),
    }

    // The same text file named twice.
    let t = root.join("t.txt");
    write(&t, "text");
    assert_bad_input(read_paths(&[t.clone(), t.clone()]), &t, 1, "duplicate id");
}

#[test]
fn state_of_the_union_speeches_folder() {
    let dir = shared().join("data/sotu-speeches");
    let start = std::time::Instant::now();
    let docs = read_path(&dir).unwrap();
    eprintln!(
        "read {} documents from {} in {:?}",
        docs.len(),
        dir.display(),
        start.elapsed()
    );
    // The README lists 249 speech texts; the folder also holds README.md (a .md file, read
    // like any other), metadata.csv and split.json (skipped).
    let speeches: Vec<&SourceDocument> = docs.iter().filter(|d| d.id.ends_with(".txt")).collect();
    assert_eq!(speeches.len(), 249);
    assert_eq!(docs.len(), 250);
    assert_eq!(docs[249].id, dir.join("README.md").to_string_lossy());
    assert_eq!(
        speeches[0].id,
        dir.join("1790-Washington-1.txt").to_string_lossy()
    );
    assert!(speeches.windows(2).all(|w| w[0].id < w[1].id), "sorted");
    let words: usize = speeches
        .iter()
        .map(|d| d.text.split_whitespace().count())
        .sum();
    assert_eq!(
        words, 2_019_452,
        "README total of whitespace-separated words"
    );
    // The demo speech is byte-identical to ../state_of_the_union.txt.
    let demo = speeches
        .iter()
        .find(|d| d.id.ends_with("2022-Biden-1.txt"))
        .unwrap();
    assert_eq!(
        demo.text,
        fs::read_to_string(shared().join("data/state_of_the_union.txt")).unwrap()
    );

    // Passing only the speeches, as the README advises.
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert_eq!(read_paths(&files).unwrap().len(), 249);
}

#[test]
fn sotu_ict_beir_corpus() {
    let file = shared().join("data/sotu-ict/corpus.jsonl");
    let docs = read_path(&file).unwrap();
    assert_eq!(docs.len(), 1366, "README: 1366 passages");
    let first = &docs[0];
    assert_eq!(first.id, "1798-Adams-1#p000");
    assert!(
        first.text.starts_with("Gentlemen of the Senate"),
        "empty title adds nothing"
    );
    assert_eq!(
        first.metadata,
        object(json!({"speech": "1798-Adams-1", "year": 1798, "title": ""}))
    );
    let speeches: std::collections::BTreeSet<&str> = docs
        .iter()
        .map(|d| d.metadata["speech"].as_str().unwrap())
        .collect();
    assert_eq!(
        speeches.len(),
        24,
        "README: the 24 held-out speeches other than 2022-Biden-1"
    );
}
