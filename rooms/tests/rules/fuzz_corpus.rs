//! The rooms fuzz corpus (`fuzz/corpus/rooms/`, see `fuzz/README.md`) as a
//! regular test: every file is decoded and played by the fuzz target's own
//! harness, `juno_rooms::fuzzing::run`, so what the fuzzer once found keeps
//! being checked.

use std::fs;
use std::path::{Path, PathBuf};

use juno_rooms::fuzzing::run;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rooms")
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
fn every_corpus_file_passes_the_fuzz_harness() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 10,
        "the fuzz corpus {} holds only {} files",
        corpus_dir().display(),
        corpus.len()
    );
    for (path, bytes) in &corpus {
        let played = std::panic::catch_unwind(|| run(bytes));
        assert!(played.is_ok(), "{} fails the fuzz harness", path.display());
    }
}

#[test]
fn the_corpus_finishes_a_match_of_every_mode() {
    // So the replay check runs for every mode, not only the lobby.
    let mut modes: Vec<&str> = corpus()
        .iter()
        .filter_map(|(_, bytes)| run(bytes))
        .map(|summary| summary.result.mode.as_str())
        .collect();
    modes.sort_unstable();
    modes.dedup();
    assert_eq!(modes, ["battle_royale", "duel", "raid", "tournament"]);
}
