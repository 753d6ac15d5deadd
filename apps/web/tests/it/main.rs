//! End-to-end tests: the real server on port 0 with a fresh data directory, driven
//! over gRPC; and the real binary as a child process for crash and shutdown tests.

mod admin;
mod authz;
mod browser;
mod describe;
mod files;
mod http;
mod jobs;
mod kinds;
mod limits;
mod operators;
mod process;
mod settings;
mod support;
mod thumbnail;
mod web;
