//! Who may see what: the in-memory directory of keys, devices and
//! permissions, the policy that turns a caller and a device into a permit,
//! and the access log every partner read goes through. The only read path
//! for partners.

pub mod directory;
pub mod log;
pub mod policy;

pub use directory::{Directory, Principal};
pub use log::{AccessLog, LogError};
pub use policy::{PermissionState, Permit, PermitScope};
pub mod export;
pub mod verify;
