//! entente: B2B identity across directory tenants, as code.
//!
//! Layers (see docs/architecture.md): `core` (pure model, rules, planner) ← `api` (CRD types) and
//! `manifest` (YAML → desired state) ← `directory` (backends) ← `engine` (observe/plan/apply) ← `cli`.

pub mod api;
pub mod cli;
pub mod controller;
pub mod core;
pub mod directory;
pub mod emulator;
pub mod engine;
pub mod files;
pub mod graph;
pub mod manifest;
pub mod sync;
