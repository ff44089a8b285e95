//! The embedded local directory (SQLite). Placeholder until implemented.
