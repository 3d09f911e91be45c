//! Arbitrary play in a room of any mode: a sequence of clock moves and inputs
//! from a few users, checked after every call (see `juno_rooms::fuzzing` for
//! the invariants). The harness lives in the crate so the corpus test runs the
//! very same one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    juno_rooms::fuzzing::run(data);
});
