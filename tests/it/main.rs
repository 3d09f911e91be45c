//! Integration tests: real servers on port 0, real WebSocket clients, real
//! SQLite and Postgres. One test binary keeps the build lean.

mod bots;
mod procs;
mod support;

mod cluster;
mod connection;
mod duel;
mod failover;
mod hardening;
mod http_api;
mod http_errors;
mod layers;
mod loadtest;
mod modes;
mod ops;
mod ops_boards;
mod ops_difficulty;
