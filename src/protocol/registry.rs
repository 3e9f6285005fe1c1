//! The protocol registry: one line per protocol. Server, `decode`, tests,
//! fuzzers and benches iterate this list.

use super::Protocol;
use crate::protocols;

static REGISTRY: &[&dyn Protocol] = &[&protocols::teltonika::Teltonika];

/// Every protocol trackgate speaks.
pub fn registry() -> &'static [&'static dyn Protocol] {
    REGISTRY
}

/// The protocol registered as `name`.
pub fn find(name: &str) -> Option<&'static dyn Protocol> {
    REGISTRY.iter().copied().find(|p| p.name() == name)
}
