//! The 32-bit status word H02 devices send with every report. Bits are
//! active-low: a cleared bit means the condition is present.
//!
//! ```text
//! bit 0   cleared: vibration alarm
//! bit 1   cleared: SOS alarm (also bit 18)
//! bit 2   cleared: overspeed alarm
//! bit 10  set: ignition (ACC) on
//! bit 19  cleared: external power cut
//! ```
//! One alarm is reported, the first in the order above.

use crate::model::{AttrKey, AttrValue, Attributes};

/// Sets `alarm` (when one is flagged), `ignition` and the raw `status`.
pub(super) fn apply(attrs: &mut Attributes, status: u32) {
    let clear = |bit: u32| status & (1 << bit) == 0;
    let alarm = if clear(0) {
        Some("vibration")
    } else if clear(1) || clear(18) {
        Some("sos")
    } else if clear(2) {
        Some("overspeed")
    } else if clear(19) {
        Some("power_cut")
    } else {
        None
    };
    if let Some(alarm) = alarm {
        attrs.push(AttrKey::named("alarm"), AttrValue::Text(alarm.into()));
    }
    attrs.push(AttrKey::named("ignition"), AttrValue::Bool(!clear(10)));
    attrs.push(AttrKey::named("status"), AttrValue::Int(i64::from(status)));
}
