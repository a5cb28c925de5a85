//! `SHAREDMEMORY.md` on disk: seeded in the main home when missing, and copied into an agent's
//! `MAINMEMORY.md` (skipped when that file is missing; written only when it changes).

use crate::core::shared_memory::{SEED, merged};
use crate::store::atomic::StoreError;
use crate::store::atomic::write_text_atomic;
use crate::store::paths::DuctorPaths;

/// Creates `<main home>/SHAREDMEMORY.md` with the seed text when it does not exist.
pub fn ensure_seed(main: &DuctorPaths) -> Result<(), StoreError> {
    let path = main.shared_memory();
    if path.exists() { Ok(()) } else { write_text_atomic(&path, SEED) }
}

/// Copies the shared text into `agent`'s memory file; `true` when the file was written.
pub fn sync_into(main: &DuctorPaths, agent: &DuctorPaths) -> Result<bool, StoreError> {
    let Ok(shared) = std::fs::read_to_string(main.shared_memory()) else { return Ok(false) };
    let memory_path = agent.main_memory();
    let Ok(memory) = std::fs::read_to_string(&memory_path) else { return Ok(false) };
    match merged(&memory, &shared) {
        Some(new) => write_text_atomic(&memory_path, &new).map(|()| true),
        None => Ok(false),
    }
}
