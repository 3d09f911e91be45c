//! `juno-loadtest`: drives a running JunoSixteen node (or several) with scripted clients.

fn main() {}
