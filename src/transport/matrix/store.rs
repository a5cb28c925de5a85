//! The Matrix store directory (transports spec §3.2): `credentials.json` (mode 0600), the
//! `next_batch` sync token and `room_id_map.json`, in the forms 0.18.2 writes them. The
//! matrix-sdk sqlite stores (device keys, room state) live beside them.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::store::atomic::{Durability, Loaded, StoreError, load_json, write_bytes_atomic, write_json_atomic};
use crate::transport::matrix::ingress::RoomIds;

/// A logged-in device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// `@bot:server`.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// Its access token.
    pub access_token: String,
}

/// The store directory of one agent's Matrix account.
#[derive(Debug, Clone)]
pub struct MatrixStore {
    dir: Utf8PathBuf,
}

impl MatrixStore {
    /// The store at `dir`.
    pub fn new(dir: Utf8PathBuf) -> Self {
        Self { dir }
    }

    /// The directory (the sqlite stores go here too).
    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    fn credentials_path(&self) -> Utf8PathBuf {
        self.dir.join("credentials.json")
    }

    /// Saved credentials; a file that cannot be read is ignored (the next way to log in is
    /// tried) and moved aside.
    pub fn credentials(&self) -> Option<Credentials> {
        match load_json::<Credentials>(&self.credentials_path()) {
            Loaded::Found(credentials) => Some(credentials),
            Loaded::Missing | Loaded::Quarantined { .. } => None,
        }
    }

    /// Saves credentials, readable by the owner only.
    pub fn save_credentials(&self, credentials: &Credentials) -> Result<(), StoreError> {
        let path = self.credentials_path();
        write_json_atomic(&path, credentials)?;
        set_owner_only(&path)
    }

    /// The sync token the last run saved.
    pub fn next_batch(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("next_batch")).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
    }

    /// Saves the sync token (the events before it are in the inbox by then).
    pub fn save_next_batch(&self, token: &str) -> Result<(), StoreError> {
        write_bytes_atomic(&self.dir.join("next_batch"), token.as_bytes(), Durability::Fsync)
    }

    /// Moves a sync token the homeserver refused aside (`next_batch.corrupt-<ts>`), logged.
    pub fn quarantine_next_batch(&self, why: &str) {
        let _ = crate::store::atomic::quarantine::<()>(&self.dir.join("next_batch"), why);
    }

    /// `room_id_map.json`.
    pub fn room_ids(&self) -> RoomIds {
        match load_json::<BTreeMap<String, u64>>(&self.dir.join("room_id_map.json")) {
            Loaded::Found(map) => RoomIds::from_map(map),
            Loaded::Missing | Loaded::Quarantined { .. } => RoomIds::default(),
        }
    }

    /// Saves the map (after each new room).
    pub fn save_room_ids(&self, ids: &RoomIds) -> Result<(), StoreError> {
        write_json_atomic(&self.dir.join("room_id_map.json"), ids.as_map())
    }
}

#[cfg(unix)]
fn set_owner_only(path: &Utf8Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| StoreError::io("chmod", path, e))
}

#[cfg(not(unix))]
fn set_owner_only(_path: &Utf8Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, MatrixStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("matrix_store")).unwrap();
        (dir, MatrixStore::new(path))
    }

    #[test]
    fn credentials_are_private_and_read_back() {
        let (_dir, store) = store();
        assert_eq!(store.credentials(), None);
        let credentials = Credentials { user_id: "@b:x".into(), device_id: "D".into(), access_token: "t".into() };
        store.save_credentials(&credentials).unwrap();
        assert_eq!(store.credentials(), Some(credentials));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.dir().join("credentials.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn broken_credentials_are_moved_aside_and_ignored() {
        let (_dir, store) = store();
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.dir().join("credentials.json"), "{nope").unwrap();
        assert_eq!(store.credentials(), None);
        let moved = std::fs::read_dir(store.dir())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("credentials.json.corrupt-"));
        assert!(moved);
    }

    #[test]
    fn token_and_room_map_round_trip_in_the_originals_form() {
        let (_dir, store) = store();
        assert_eq!(store.next_batch(), None);
        store.save_next_batch("s72_5").unwrap();
        assert_eq!(store.next_batch().as_deref(), Some("s72_5"));
        let mut ids = store.room_ids();
        ids.chat_id("!abc123:example.org");
        store.save_room_ids(&ids).unwrap();
        let text = std::fs::read_to_string(store.dir().join("room_id_map.json")).unwrap();
        assert_eq!(text, "{\n  \"!abc123:example.org\": 7070014638169153529\n}\n");
        assert_eq!(store.room_ids(), ids);
    }
}
