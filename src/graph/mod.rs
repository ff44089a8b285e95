//! Microsoft Graph as entente speaks it: the wire format shared by the Graph client backend
//! (`crate::directory::graph`) and the Graph-compatible emulator (`crate::emulator`).
//!
//! Only serde types and pure conversions live here: no HTTP, no IO. Both sides build on the same
//! types, so a request the client sends is exactly what the emulator parses, and the reverse.

pub mod wire;
