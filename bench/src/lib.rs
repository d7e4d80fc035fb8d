//! The Gatehouse performance suite's shared parts: the synthetic workloads (W1–W4 of the
//! performance reference) and their YAML. The harness itself is the `gatehouse-load` binary;
//! the criterion benches live in the crates they measure.

pub mod workload;
