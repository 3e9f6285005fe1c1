//! The protocol registry: one line per protocol. Server, `decode`, tests,
//! fuzzers and benches iterate this list.

use super::Protocol;
use crate::protocols;

static REGISTRY: &[&dyn Protocol] = &[
    &protocols::teltonika::Teltonika,
    &protocols::gt06::Gt06,
    &protocols::gl200::Gl200,
    &protocols::jt808::Jt808,
    &protocols::h02::H02,
    &protocols::meitrack::Meitrack,
    &protocols::ruptela::Ruptela,
    &protocols::wialon::Wialon,
    &protocols::tk103::Tk103,
    &protocols::osmand::Osmand,
];

/// Every protocol trackgate speaks.
pub fn registry() -> &'static [&'static dyn Protocol] {
    REGISTRY
}

/// The protocol registered as `name`.
pub fn find(name: &str) -> Option<&'static dyn Protocol> {
    REGISTRY.iter().copied().find(|p| p.name() == name)
}
