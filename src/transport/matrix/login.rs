//! Logging the Matrix transport in (transports spec §3.2): the client on the sqlite state and
//! crypto stores under `store_path`, then saved credentials, else the configured access token
//! and device, else a password login (device name `ductor`) whose credentials are saved 0600.

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk::{Client, SessionMeta, SessionTokens};

use crate::core::config::model::Config;
use crate::transport::matrix::store::{Credentials, MatrixStore};

/// The client for the configured homeserver, with its stores under `store`.
pub(super) async fn build_client(config: &Config, store: &MatrixStore) -> Result<Client, String> {
    let m = &config.matrix;
    let strategy = if m.verified_devices_only {
        matrix_sdk_crypto::CollectStrategy::OnlyTrustedDevices
    } else {
        matrix_sdk_crypto::CollectStrategy::AllDevices
    };
    std::fs::create_dir_all(store.dir()).map_err(|e| format!("cannot create the Matrix store {}: {e}", store.dir()))?;
    Client::builder()
        .homeserver_url(m.homeserver.trim_end_matches('/'))
        .sqlite_store(store.dir(), None)
        .with_room_key_recipient_strategy(strategy)
        .request_config(RequestConfig::default().retry_limit(2))
        .build()
        .await
        .map_err(|e| format!("Matrix client for {} could not start: {e}", m.homeserver))
}

pub(super) fn session_of(credentials: &Credentials) -> Result<MatrixSession, String> {
    let user_id = OwnedUserId::try_from(credentials.user_id.as_str()).map_err(|e| e.to_string())?;
    Ok(MatrixSession {
        meta: SessionMeta { user_id, device_id: OwnedDeviceId::from(credentials.device_id.as_str()) },
        tokens: SessionTokens { access_token: credentials.access_token.clone(), refresh_token: None },
    })
}

/// Login order of §3.2: saved credentials, then the configured token and device, then the
/// password (the result is saved, mode 0600).
pub(super) async fn log_in(client: &Client, config: &Config, store: &MatrixStore) -> Result<(), String> {
    let m = &config.matrix;
    let mut tried = Vec::new();
    if let Some(saved) = store.credentials() {
        match restore(client, &saved).await {
            Ok(()) => return Ok(()),
            Err(e) => tried.push(format!("saved credentials: {e}")),
        }
    }
    if !m.access_token.trim().is_empty() && !m.device_id.trim().is_empty() {
        let configured = Credentials {
            user_id: m.user_id.clone(),
            device_id: m.device_id.clone(),
            access_token: m.access_token.clone(),
        };
        match restore(client, &configured).await {
            Ok(()) => {
                if let Err(e) = store.save_credentials(&configured) {
                    tracing::warn!(actor = "matrix", error = %e, "Could not save the Matrix credentials.");
                }
                return Ok(());
            }
            Err(e) => tried.push(format!("configured access token: {e}")),
        }
    }
    if !m.password.is_empty() {
        match client.matrix_auth().login_username(&m.user_id, &m.password).initial_device_display_name("ductor").await {
            Ok(response) => {
                let credentials = Credentials {
                    user_id: response.user_id.to_string(),
                    device_id: response.device_id.to_string(),
                    access_token: response.access_token.clone(),
                };
                if let Err(e) = store.save_credentials(&credentials) {
                    tracing::warn!(actor = "matrix", error = %e, "Could not save the Matrix credentials.");
                }
                tracing::info!(actor = "matrix", user = %credentials.user_id, device = %credentials.device_id, "Logged in with the password.");
                return Ok(());
            }
            Err(e) => tried.push(format!("password: {e}")),
        }
    }
    if tried.is_empty() {
        tried.push("no password or access token configured".to_owned());
    }
    Err(format!("Matrix login of {} at {} failed ({})", m.user_id, m.homeserver, tried.join("; ")))
}

pub(super) async fn restore(client: &Client, credentials: &Credentials) -> Result<(), String> {
    client.restore_session(session_of(credentials)?).await.map_err(|e| e.to_string())?;
    client.whoami().await.map_err(|e| e.to_string())?;
    Ok(())
}
