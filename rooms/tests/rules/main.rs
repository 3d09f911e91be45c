//! The game rules, played on a simulated clock: one test binary for every mode.
#![allow(clippy::unwrap_used)]

mod common;

mod duel;
mod failover;
mod fuzz_corpus;
mod presence;
mod props;
mod raid;
mod royale;
mod tournament;
