//! The built-in games' rules, each a deterministic simulation with no networking.

pub mod shooter;
