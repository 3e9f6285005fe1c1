//! placeholder until the export module lands
use crate::access::PermissionState;
use crate::store::{Permission, StoredEntry};
pub struct Summary<'a> {
    pub permission: &'a Permission,
    pub state: PermissionState,
    pub device_names: &'a [(String, String)],
    pub generated_ms: i64,
}
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("x")]
    X,
}
pub fn xlsx(_s: &Summary, _e: &[StoredEntry]) -> Result<Vec<u8>, ExportError> {
    Err(ExportError::X)
}
pub fn csv(_e: &[StoredEntry]) -> String {
    String::new()
}
