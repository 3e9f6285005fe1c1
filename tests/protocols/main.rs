//! One test binary for the protocols beyond Teltonika (one link instead of
//! nine): each module checks its protocol's vectors through the replay
//! driver and speaks to the running server over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod gl200;
mod gt06;
mod h02;
mod jt808;
mod meitrack;
mod osmand;
mod ruptela;
mod tk103;
mod wialon;
