//! The game rules, played on a simulated clock: one test binary for every mode.
#![allow(clippy::unwrap_used)]

mod common;

mod duel;
mod presence;
mod props;
mod raid;
mod royale;
mod tournament;
