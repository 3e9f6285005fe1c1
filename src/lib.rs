//! trackgate: a telematics gateway. Trackers connect with their own
//! protocols; positions land in a live engine; partners see only what a
//! provider granted them.
//!
//! Where things are:
//! - [`model`]: `Position`, `DeviceId`, attributes — no I/O.
//! - [`protocol`]: the sans-IO protocol framework, registry, replay driver.
//! - [`protocols`]: one folder per tracker protocol.
//! - [`engine`]: latest position per device and the spatial index.
//! - [`server`]: sockets, sessions, limits, HTTP.
//! - [`access`], [`api`], [`web`]: permissions, the access log, the REST
//!   API and the web app on top of it.
//! - [`config`], [`cli`], [`app`], [`metrics`]: wiring.

pub mod access;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod decode;
pub mod dedicated;
pub mod engine;
pub mod framed;
pub mod history;
pub mod metrics;
pub mod model;
pub mod mqtt;
pub mod protocol;
pub mod protocols;
pub mod server;
pub mod simulate;
pub mod store;
pub mod web;
