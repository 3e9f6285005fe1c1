//! The in-memory directory: API keys (by hash), users, devices and
//! permissions, loaded from the store at start and updated in step with
//! every write, so authorizing a request never touches the database.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::store::{Device, Loaded, Permission, Role, User};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user_id: i64,
    pub company_id: String,
    pub role: Role,
    pub api_key_id: i64,
}

/// SHA-256 of an API key: what is stored and looked up.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random API key: `tg_` + 64 hex digits (256 bits).
pub fn new_api_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("tg_{}", hex::encode(bytes))
}

/// Keys, users, devices and permissions in memory.
#[derive(Default)]
pub struct Directory {
    keys: DashMap<[u8; 32], Principal>,
    users: DashMap<i64, User>,
    companies: DashMap<String, String>,
    devices: DashMap<String, Device>,
    /// Each company's device ids, in order: an owner's every list, spatial
    /// query and stream tick asks for them, which must not cost a scan of
    /// every company's devices (a million of them at scale).
    owned: DashMap<String, BTreeSet<String>>,
    permissions: RwLock<Permissions>,
    unknown: DashMap<String, UnknownDevice>,
}

/// Permissions by id, and the ids each company is a party of: every read
/// looks up the caller's company's permissions, which must not cost a
/// scan of every company's (revoked ones stay, for their logs).
#[derive(Default)]
struct Permissions {
    by_id: HashMap<i64, Arc<Permission>>,
    by_company: HashMap<String, Vec<i64>>,
}

impl Permissions {
    fn insert(&mut self, p: Arc<Permission>) {
        for company in [&p.provider_company_id, &p.recipient_company_id] {
            let ids = self.by_company.entry(company.clone()).or_default();
            if !ids.contains(&p.id) {
                ids.push(p.id);
            }
        }
        self.by_id.insert(p.id, p);
    }
}

/// Most unknown devices remembered for the operator.
const MAX_UNKNOWN: usize = 10_000;

/// A device that sent data nobody registered it for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnknownDevice {
    pub device_id: String,
    pub protocol: &'static str,
    #[serde(serialize_with = "crate::api::ser_ms")]
    pub first_seen: i64,
    #[serde(serialize_with = "crate::api::ser_ms")]
    pub last_seen: i64,
    pub messages: u64,
}

impl Directory {
    /// Builds the directory from what the store loaded.
    pub fn from_loaded(l: Loaded) -> Self {
        let d = Directory::default();
        for c in l.companies {
            d.companies.insert(c.id, c.name);
        }
        for u in l.users {
            d.users.insert(u.id, u);
        }
        for k in l.api_keys.into_iter().filter(|k| !k.revoked) {
            d.add_key(k.id, k.user_id, k.hash);
        }
        for dev in l.devices {
            d.add_device(dev);
        }
        {
            let mut p = d.permissions.write();
            for perm in l.permissions {
                p.insert(Arc::new(perm));
            }
        }
        d
    }

    pub fn authenticate(&self, key: &str) -> Option<Principal> {
        self.authenticate_hash(&key_hash(key))
    }

    /// The holder of the key with this hash, while the key is valid (a web
    /// session keeps the hash, so revoking the key ends the session too).
    pub fn authenticate_hash(&self, hash: &[u8; 32]) -> Option<Principal> {
        self.keys.get(hash).map(|p| p.clone())
    }

    pub fn add_key(&self, key_id: i64, user_id: i64, hash: [u8; 32]) {
        if let Some(u) = self.users.get(&user_id) {
            self.keys.insert(
                hash,
                Principal {
                    user_id,
                    company_id: u.company_id.clone(),
                    role: u.role,
                    api_key_id: key_id,
                },
            );
        }
    }

    /// Removes a key; returns the user it belonged to.
    pub fn remove_key(&self, key_id: i64) -> Option<i64> {
        let hash = self
            .keys
            .iter()
            .find(|e| e.value().api_key_id == key_id)
            .map(|e| *e.key())?;
        self.keys.remove(&hash).map(|(_, p)| p.user_id)
    }

    pub fn key_owner(&self, key_id: i64) -> Option<Principal> {
        self.keys
            .iter()
            .find(|e| e.value().api_key_id == key_id)
            .map(|e| e.value().clone())
    }

    pub fn add_company(&self, id: &str, name: &str) {
        self.companies.insert(id.to_string(), name.to_string());
    }

    pub fn company_name(&self, id: &str) -> Option<String> {
        self.companies.get(id).map(|n| n.clone())
    }

    pub fn company_exists(&self, id: &str) -> bool {
        self.companies.contains_key(id)
    }

    pub fn add_user(&self, u: User) {
        self.users.insert(u.id, u);
    }

    /// How many users `company` has (a scan: for the rare user creation).
    pub fn users_in(&self, company: &str) -> usize {
        self.users
            .iter()
            .filter(|u| u.company_id == company)
            .count()
    }

    pub fn user(&self, id: i64) -> Option<User> {
        self.users.get(&id).map(|u| u.clone())
    }

    pub fn add_device(&self, d: Device) {
        self.unknown.remove(&d.device_id);
        let (id, company) = (d.device_id.clone(), d.company_id.clone());
        // The device first, then its place in the owner's list: a list
        // never names a device that is not there yet.
        if let Some(before) = self.devices.insert(id.clone(), d) {
            if before.company_id != company {
                self.owned.remove_if_mut(&before.company_id, |_, ids| {
                    ids.remove(&id);
                    ids.is_empty()
                });
            }
        }
        self.owned.entry(company).or_default().insert(id);
    }

    pub fn device(&self, id: &str) -> Option<Device> {
        self.devices.get(id).map(|d| d.clone())
    }

    /// Whether anyone registered `device_id`.
    pub fn is_registered(&self, device_id: &str) -> bool {
        self.devices.contains_key(device_id)
    }

    /// Devices owned by `company`, by id.
    pub fn company_devices(&self, company: &str) -> Vec<Device> {
        let Some(ids) = self.owned.get(company) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| self.devices.get(id).map(|d| d.clone()))
            .filter(|d| d.company_id == company)
            .collect()
    }

    /// Remembers a message from an unregistered device (bounded).
    pub fn saw_unknown(&self, device_id: &str, protocol: &'static str, now_ms: i64) {
        if let Some(mut u) = self.unknown.get_mut(device_id) {
            u.last_seen = now_ms;
            u.protocol = protocol;
            u.messages += 1;
            return;
        }
        if self.unknown.len() >= MAX_UNKNOWN {
            return;
        }
        self.unknown.insert(
            device_id.to_string(),
            UnknownDevice {
                device_id: device_id.to_string(),
                protocol,
                first_seen: now_ms,
                last_seen: now_ms,
                messages: 1,
            },
        );
    }

    /// Unknown devices, most recently seen first.
    pub fn unknown_devices(&self) -> Vec<UnknownDevice> {
        let mut v: Vec<UnknownDevice> = self.unknown.iter().map(|u| u.clone()).collect();
        v.sort_by_key(|u| std::cmp::Reverse(u.last_seen));
        v
    }

    pub fn put_permission(&self, p: Permission) {
        self.permissions.write().insert(Arc::new(p));
    }

    pub fn permission(&self, id: i64) -> Option<Arc<Permission>> {
        self.permissions.read().by_id.get(&id).cloned()
    }

    /// Applies `change` to the current copy of permission `id` under the
    /// write lock. Why not `put_permission` of a copy read earlier: a request
    /// that read the permission, then awaited the store, would put back its
    /// stale copy and undo whatever landed meanwhile (a revoke, another
    /// device's shipment number).
    pub fn update_permission(&self, id: i64, change: impl FnOnce(&mut Permission)) {
        let mut all = self.permissions.write();
        if let Some(p) = all.by_id.get_mut(&id) {
            change(Arc::make_mut(p));
        }
    }

    /// The permissions `company` grants or receives that match `pred`,
    /// by id.
    pub fn permissions_of(
        &self,
        company: &str,
        pred: impl Fn(&Permission) -> bool,
    ) -> Vec<Arc<Permission>> {
        let mut v: Vec<Arc<Permission>> =
            self.with_permissions_of(company, |all| all.filter(|p| pred(p)).cloned().collect());
        v.sort_by_key(|p| p.id);
        v
    }

    /// How many of `company`'s permissions (either side) match `pred`,
    /// without cloning them.
    pub fn count_permissions_of(&self, company: &str, pred: impl Fn(&Permission) -> bool) -> usize {
        self.sum_permissions_of(company, |p| usize::from(pred(p)))
    }

    /// The sum of `f` over `company`'s permissions (either side), without
    /// cloning them.
    pub fn sum_permissions_of(&self, company: &str, f: impl Fn(&Permission) -> usize) -> usize {
        self.with_permissions_of(company, |all| all.map(|p| f(p)).sum())
    }

    /// `f` over the permissions `company` grants or receives, under the
    /// read lock.
    fn with_permissions_of<T>(
        &self,
        company: &str,
        f: impl FnOnce(&mut dyn Iterator<Item = &Arc<Permission>>) -> T,
    ) -> T {
        let all = self.permissions.read();
        let mut it = all
            .by_company
            .get(company)
            .into_iter()
            .flatten()
            .filter_map(|id| all.by_id.get(id));
        f(&mut it)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission() -> Permission {
        Permission {
            id: 1,
            name: "Load 42".into(),
            provider_company_id: "4711".into(),
            recipient_company_id: "0815".into(),
            recipient_user_id: None,
            devices: vec![("a".into(), None), ("b".into(), None)],
            valid_from_ms: 0,
            valid_until_ms: None,
            temporary: false,
            created_ms: 0,
            revoked_ms: None,
        }
    }

    #[test]
    fn updates_apply_to_the_current_permission_not_a_stale_copy() {
        let d = Directory::default();
        d.put_permission(permission());
        // A request read the permission before the others changed it.
        let stale = d.permission(1).unwrap();
        d.update_permission(1, |p| p.revoked_ms = Some(5));
        d.update_permission(1, |p| p.devices[1].1 = Some("SN".into()));
        let now = d.permission(1).unwrap();
        assert_eq!(now.revoked_ms, Some(5), "the revoke is not undone");
        assert_eq!(now.devices[1].1.as_deref(), Some("SN"));
        assert_eq!(stale.revoked_ms, None, "readers keep their snapshot");
        d.update_permission(2, |p| p.revoked_ms = Some(9));
        assert!(d.permission(2).is_none(), "no permission 2 is created");
    }

    #[test]
    fn a_company_lists_exactly_its_own_devices_in_order() {
        let d = Directory::default();
        let device = |id: &str, company: &str| Device {
            device_id: id.into(),
            company_id: company.into(),
            name: format!("Truck {id}"),
        };
        for (id, company) in [("3", "4711"), ("1", "4711"), ("2", "0815"), ("0", "4711")] {
            d.add_device(device(id, company));
        }
        let ids = |company: &str| -> Vec<String> {
            d.company_devices(company)
                .into_iter()
                .map(|x| x.device_id)
                .collect()
        };
        assert_eq!(ids("4711"), ["0", "1", "3"]);
        assert_eq!(ids("0815"), ["2"]);
        assert!(ids("9999").is_empty());
        assert_eq!(d.company_devices("4711")[1].name, "Truck 1");
        // Registered again under another company: it moves.
        d.add_device(device("1", "0815"));
        assert_eq!(ids("4711"), ["0", "3"]);
        assert_eq!(ids("0815"), ["1", "2"]);
        // The same owner again (a renamed device): listed once, renamed.
        d.add_device(Device {
            name: "Renamed".into(),
            ..device("2", "0815")
        });
        assert_eq!(ids("0815"), ["1", "2"]);
        assert_eq!(d.company_devices("0815")[1].name, "Renamed");
        // Loaded from the store at start: the same lists.
        let loaded = Directory::from_loaded(Loaded {
            devices: vec![
                device("b", "4711"),
                device("c", "0815"),
                device("a", "4711"),
            ],
            ..Loaded::default()
        });
        let ids: Vec<String> = loaded
            .company_devices("4711")
            .into_iter()
            .map(|x| x.device_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn a_company_finds_exactly_the_permissions_it_is_a_party_of() {
        let d = Directory::default();
        let grant = |id: i64, from: &str, to: &str| Permission {
            id,
            provider_company_id: from.into(),
            recipient_company_id: to.into(),
            ..permission()
        };
        d.put_permission(grant(3, "4711", "0815"));
        d.put_permission(grant(1, "4711", "0815"));
        d.put_permission(grant(2, "4711", "9999"));
        d.put_permission(grant(4, "0815", "9999"));
        d.put_permission(grant(1, "4711", "0815")); // put again: not twice
        let ids = |company: &str| -> Vec<i64> {
            d.permissions_of(company, |_| true)
                .iter()
                .map(|p| p.id)
                .collect()
        };
        assert_eq!(ids("4711"), [1, 2, 3]);
        assert_eq!(ids("0815"), [1, 3, 4]);
        assert_eq!(ids("9999"), [2, 4]);
        assert!(ids("1234").is_empty());
        let received: Vec<i64> = d
            .permissions_of("0815", |p| p.recipient_company_id == "0815")
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(received, [1, 3]);
    }
}
