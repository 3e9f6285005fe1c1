//! The data model shared by every layer: device ids, positions and their
//! attributes. No I/O here; units are in the field names.

mod attributes;
mod device_id;
mod incoming;
mod position;

pub use attributes::{AttrKey, AttrValue, Attributes, Namer};
pub use device_id::{DeviceId, DeviceIdError};
pub use incoming::{InvalidPosition, PositionIn, MAX_ATTRIBUTES, MAX_ATTRIBUTE_BYTES};
pub use position::{format_time, Position, Report, MAX_FIX_AHEAD_MS};
