//! Arbitrary bytes as a client frame: `decode_client` never panics, its errors
//! are the decoding codes with short messages, and whatever decodes re-encodes
//! (no larger) to the same frame. The check lives in the crate so the corpus
//! test runs the very same one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    juno_protocol::fuzzing::check_decode_client(data);
});
