//! The policy: the only code that can make a `Permit`, the proof that a
//! caller may read a device's data, and of which time window. Readers take
//! a permit, so nothing serves a partner without passing through here.

use std::sync::Arc;

use super::{Directory, Principal};
use crate::engine::Engine;
use crate::model::{DeviceId, Position};
use crate::store::{Device, Permission};

/// Where a permission stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionState {
    Active,
    Scheduled,
    Expired,
    Revoked,
}

/// The state of `p` at `now_ms`.
pub fn state(p: &Permission, now_ms: i64) -> PermissionState {
    if p.revoked_ms.is_some() {
        PermissionState::Revoked
    } else if now_ms < p.valid_from_ms {
        PermissionState::Scheduled
    } else if p.valid_until_ms.is_some_and(|u| now_ms >= u) {
        PermissionState::Expired
    } else {
        PermissionState::Active
    }
}

/// Why the caller may read a device.
#[derive(Debug, Clone)]
pub enum PermitScope {
    /// The caller's company owns the device: every fix, any time.
    Owner,
    /// Through an active received permission: only fixes in its window.
    Recipient {
        permission: Arc<Permission>,
        shipment_number: Option<String>,
    },
}

/// Proof that a caller may read one device. Only this module makes them:
/// the private field seals it against the rest of this crate too, which
/// `#[non_exhaustive]` would not.
#[derive(Debug, Clone)]
#[allow(clippy::manual_non_exhaustive)]
pub struct Permit {
    pub device: Device,
    pub scope: PermitScope,
    _sealed: (),
}

impl Permit {
    /// Whether a fix taken at `fix_ms` may be shown under this permit.
    pub fn shows(&self, fix_ms: i64) -> bool {
        match &self.scope {
            PermitScope::Owner => true,
            PermitScope::Recipient { permission, .. } => {
                fix_ms >= permission.valid_from_ms
                    && permission.valid_until_ms.is_none_or(|u| fix_ms < u)
            }
        }
    }

    /// The permission this permit reads through, for a recipient.
    pub fn permission(&self) -> Option<&Arc<Permission>> {
        match &self.scope {
            PermitScope::Owner => None,
            PermitScope::Recipient { permission, .. } => Some(permission),
        }
    }

    /// The device's latest fix, if the permit shows it.
    pub fn latest(&self, engine: &Engine) -> Option<Position> {
        let id = DeviceId::new(&self.device.device_id).ok()?;
        engine
            .get(&id)
            .filter(|p| self.shows(p.fix_time.timestamp_millis()))
    }
}

/// Whether `who` is the recipient of `p` (its company, and its user where
/// the permission names one).
pub fn is_recipient(p: &Permission, who: &Principal) -> bool {
    p.recipient_company_id == who.company_id && p.recipient_user_id.is_none_or(|u| u == who.user_id)
}

/// A permit for `device_id` if `who` owns it or holds an active permission
/// for it at `now_ms`. Where several permissions cover it, the one with the
/// earliest start (the widest view) is used.
pub fn authorize(dir: &Directory, who: &Principal, device_id: &str, now_ms: i64) -> Option<Permit> {
    let device = dir.device(device_id)?;
    if device.company_id == who.company_id {
        return Some(Permit {
            device,
            scope: PermitScope::Owner,
            _sealed: (),
        });
    }
    let mut perms = dir.permissions_of(&who.company_id, |p| {
        is_recipient(p, who)
            && state(p, now_ms) == PermissionState::Active
            && p.devices.iter().any(|(d, _)| d == device_id)
    });
    perms.sort_by_key(|p| (p.valid_from_ms, p.id));
    let permission = perms.into_iter().next()?;
    let shipment_number = permission
        .devices
        .iter()
        .find(|(d, _)| d == device_id)
        .and_then(|(_, s)| s.clone());
    Some(Permit {
        device,
        scope: PermitScope::Recipient {
            permission,
            shipment_number,
        },
        _sealed: (),
    })
}

/// Permits for every device the caller's company owns.
pub fn own(dir: &Directory, who: &Principal) -> Vec<Permit> {
    dir.company_devices(&who.company_id)
        .into_iter()
        .map(|device| Permit {
            device,
            scope: PermitScope::Owner,
            _sealed: (),
        })
        .collect()
}

/// Permits for every device of the caller's active received permissions
/// (one per permission and device).
pub fn received(dir: &Directory, who: &Principal, now_ms: i64) -> Vec<Permit> {
    let mut out = Vec::new();
    for p in dir.permissions_of(&who.company_id, |p| {
        is_recipient(p, who) && state(p, now_ms) == PermissionState::Active
    }) {
        for (device_id, shipment_number) in &p.devices {
            if let Some(device) = dir.device(device_id) {
                out.push(Permit {
                    device,
                    scope: PermitScope::Recipient {
                        permission: Arc::clone(&p),
                        shipment_number: shipment_number.clone(),
                    },
                    _sealed: (),
                });
            }
        }
    }
    out
}

/// Whether `who` is the provider or the recipient side of `p` (may read
/// its log), regardless of its state.
pub fn is_party(p: &Permission, who: &Principal) -> bool {
    p.provider_company_id == who.company_id || is_recipient(p, who)
}
