//! Rows as the rest of trackgate sees them.

use serde::Serialize;

/// A company's role-based user role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages the company's permissions and users.
    Admin,
    /// Reads.
    User,
    /// Pushes positions for the company's devices.
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Company {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: i64,
    pub company_id: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub device_id: String,
    pub company_id: String,
    pub name: String,
}

/// An API key row (the hash only).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: i64,
    pub hash: [u8; 32],
    pub revoked: bool,
}

/// A permission to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPermission {
    pub name: String,
    pub provider_company_id: String,
    pub recipient_company_id: String,
    pub recipient_user_id: Option<i64>,
    pub device_ids: Vec<String>,
    pub valid_from_ms: i64,
    pub valid_until_ms: Option<i64>,
    pub temporary: bool,
    pub created_ms: i64,
    pub created_by_user_id: i64,
}

/// A stored permission with its devices and their shipment numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    pub id: i64,
    pub name: String,
    pub provider_company_id: String,
    pub recipient_company_id: String,
    pub recipient_user_id: Option<i64>,
    /// (device id, shipment number), in device id order.
    pub devices: Vec<(String, Option<String>)>,
    pub valid_from_ms: i64,
    pub valid_until_ms: Option<i64>,
    pub temporary: bool,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// What `Store::load` returns.
#[derive(Debug, Default)]
pub struct Loaded {
    pub companies: Vec<Company>,
    pub users: Vec<User>,
    pub api_keys: Vec<ApiKey>,
    pub devices: Vec<Device>,
    pub permissions: Vec<Permission>,
}

/// One access-log entry to append. `scope` is `partner` (both sides of the
/// permission see it) or `security` (the operator's log of denied attempts).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogEntry {
    pub scope: &'static str,
    pub time_ms: i64,
    /// `read`, `grant`, `revoke`, `shipment_number`, `log_download`, `denied`.
    pub event: String,
    pub permission_id: Option<i64>,
    pub permission_name: Option<String>,
    pub provider_company_id: Option<String>,
    pub recipient_company_id: Option<String>,
    pub user_id: Option<i64>,
    pub api_key_id: Option<i64>,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    /// `app`, `api`, `stream`, `export`.
    pub channel: Option<String>,
    /// Query kind: `latest`, `list`, `bbox`, `near`, `history`, …
    pub query: Option<String>,
    pub positions: Option<i64>,
    pub shipment_number: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// A stored entry with its id and chain hashes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEntry {
    pub id: i64,
    #[serde(flatten)]
    pub entry: LogEntry,
    #[serde(serialize_with = "hex_ser")]
    pub prev_hash: [u8; 32],
    #[serde(serialize_with = "hex_ser")]
    pub hash: [u8; 32],
}

fn hex_ser<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}
