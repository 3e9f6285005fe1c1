//! Teltonika (FMB/FMC/FMM…): TCP IMEI login + AVL packets (codec 8, 8E, 16,
//! GH3000, 12/13 responses), UDP AVL packets. See `protocols/teltonika.md`.

use crate::protocol::{Protocol, Session, SessionConfig, Transport};

/// The Teltonika protocol (registry name `teltonika`, port 5027).
pub struct Teltonika;

impl Protocol for Teltonika {
    fn name(&self) -> &'static str {
        "teltonika"
    }
    fn default_port(&self) -> u16 {
        5027
    }
    fn transports(&self) -> &'static [Transport] {
        &[Transport::Tcp, Transport::Udp]
    }
    fn session(&self, _config: &SessionConfig) -> Box<dyn Session> {
        todo!()
    }
}
