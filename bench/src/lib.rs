//! Shared pieces of Plumb's benchmarks: a deterministic generator of realistic GenAI spans, and
//! control of server processes (start on free ports, peak memory, stop).

pub mod day;
pub mod gen;
pub mod raw_grpc;
pub mod server;
