//! The `decode_client` fuzz corpus (`fuzz/corpus/decode_client/`, see
//! `fuzz/README.md`) as a regular test: every file goes through the fuzz
//! target's own check, so what the fuzzer once found keeps being checked.

use std::fs;
use std::path::{Path, PathBuf};

use juno_protocol::fuzzing::{check_decode_client, seed_frames};
use juno_protocol::{decode_client, ClientMsg};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode_client")
}

/// Every file of the corpus, sorted by name.
fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir();
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the fuzz corpus {} must exist: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn every_corpus_file_passes_the_fuzz_check() {
    let corpus = corpus();
    assert!(
        corpus.len() >= ClientMsg::TYPES.len(),
        "the fuzz corpus {} holds only {} files",
        corpus_dir().display(),
        corpus.len()
    );
    for (path, bytes) in &corpus {
        let run = std::panic::catch_unwind(|| check_decode_client(bytes));
        assert!(run.is_ok(), "{} fails the fuzz check", path.display());
    }
}

#[test]
fn the_corpus_holds_a_valid_frame_of_every_type() {
    let mut types: Vec<&str> = corpus()
        .iter()
        .filter_map(|(_, bytes)| decode_client(bytes).ok())
        .map(|frame| frame.msg.type_name())
        .collect();
    types.sort_unstable();
    types.dedup();
    let mut all = ClientMsg::TYPES.to_vec();
    all.sort_unstable();
    assert_eq!(types, all);
}

#[test]
fn seed_frames_pass_the_fuzz_check_and_cover_every_type() {
    let mut types = Vec::new();
    for (name, bytes) in seed_frames() {
        check_decode_client(&bytes);
        let frame = decode_client(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        types.push(frame.msg.type_name());
    }
    types.sort_unstable();
    types.dedup();
    let mut all = ClientMsg::TYPES.to_vec();
    all.sort_unstable();
    assert_eq!(types, all);
}

/// Writes the seed frames into the corpus directory (run once when setting up
/// the corpus; see `fuzz/README.md`):
/// `cargo test -p juno-protocol --test codec -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes files: run by hand to seed fuzz/corpus/decode_client"]
fn write_seed_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seed_frames() {
        fs::write(dir.join(name), bytes).unwrap();
    }
}
