//! Protocol v2 of the direct API, pure (no I/O): the key exchange of libsodium's `crypto_kx`
//! (X25519, then BLAKE2b-512 over `shared ‖ client_pk ‖ server_pk`, split into a receive and a
//! transmit key) on orion's primitives, and one `secretstream` (XChaCha20-Poly1305, orion's
//! `aead::streaming`) per direction. The first frame a side sends carries its 24-byte stream
//! header in front; every frame is one chunk, so a replayed, dropped or reordered frame does
//! not open. A sender tags every [`REKEY_EVERY`]-th frame `REKEY`; a receiver refuses a peer
//! that lets more frames pass without one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orion::hazardous::aead::streaming::{ABYTES, Nonce, SecretKey, StreamTag, StreamXChaCha20Poly1305};
use orion::hazardous::ecc::x25519::{PrivateKey, PublicKey, key_agreement};
use orion::hazardous::hash::blake2::blake2b::Blake2b;

/// Bytes of an X25519 key and of a session key.
pub const KEY_BYTES: usize = 32;
/// Bytes of a secretstream header.
pub const HEADER_BYTES: usize = 24;
/// A sender tags at least every this many frames `REKEY`.
pub const REKEY_EVERY: u64 = 256;
/// secretstream's `TAG_REKEY` and `TAG_FINAL` bytes (libsodium's values).
const TAG_REKEY: u8 = 0x02;
const TAG_FINAL: u8 = 0x03;

/// Why a v2 frame could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The peer's public key gives an all-zero shared secret (a low-order point).
    #[error("the key exchange failed: the public key is not usable")]
    KeyExchange,
    /// Not base64.
    #[error("the frame is not base64")]
    NotBase64,
    /// Shorter than a chunk (and, for the first frame, its header).
    #[error("the frame is too short to be a sealed chunk")]
    TooShort,
    /// The chunk does not authenticate in this position of the stream.
    #[error("the frame does not open: it was replayed, dropped, reordered, altered or sealed with another key")]
    DoesNotOpen,
    /// More than [`REKEY_EVERY`] frames without a `REKEY` tag.
    #[error("the peer sent more than {REKEY_EVERY} frames without a rekey")]
    RekeyMissing,
    /// The peer ended its stream (`TAG_FINAL`).
    #[error("the peer ended its stream")]
    Finished,
    /// The cipher refused (never for frames of a sane size).
    #[error("sealing failed")]
    Seal,
}

/// The two session keys of one side.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Opens what the peer sends.
    pub rx: [u8; KEY_BYTES],
    /// Seals what this side sends.
    pub tx: [u8; KEY_BYTES],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

/// The X25519 public key of a secret key.
pub fn public_key(secret: &[u8; KEY_BYTES]) -> Result<[u8; KEY_BYTES], StreamError> {
    let secret = PrivateKey::from(*secret);
    let public = PublicKey::try_from(&secret).map_err(|_| StreamError::KeyExchange)?;
    let mut out = [0u8; KEY_BYTES];
    out.copy_from_slice(public.as_ref());
    Ok(out)
}

fn kx_digest(
    own_secret: &[u8; KEY_BYTES],
    peer_public: &[u8; KEY_BYTES],
    client_pk: &[u8; KEY_BYTES],
    server_pk: &[u8; KEY_BYTES],
) -> Result<[u8; 2 * KEY_BYTES], StreamError> {
    let shared = key_agreement(&PrivateKey::from(*own_secret), &PublicKey::from(*peer_public))
        .map_err(|_| StreamError::KeyExchange)?;
    let mut hash = Blake2b::new(2 * KEY_BYTES).map_err(|_| StreamError::KeyExchange)?;
    let mut feed = |bytes: &[u8]| hash.update(bytes).map_err(|_| StreamError::KeyExchange);
    feed(shared.unprotected_as_ref())?;
    feed(client_pk)?;
    feed(server_pk)?;
    let digest = hash.finalize().map_err(|_| StreamError::KeyExchange)?;
    let mut out = [0u8; 2 * KEY_BYTES];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

fn split(digest: &[u8; 2 * KEY_BYTES]) -> ([u8; KEY_BYTES], [u8; KEY_BYTES]) {
    let (mut first, mut second) = ([0u8; KEY_BYTES], [0u8; KEY_BYTES]);
    first.copy_from_slice(&digest[..KEY_BYTES]);
    second.copy_from_slice(&digest[KEY_BYTES..]);
    (first, second)
}

/// `crypto_kx_server_session_keys`: the server's receive and transmit keys.
pub fn server_session_keys(
    server_secret: &[u8; KEY_BYTES],
    client_pk: &[u8; KEY_BYTES],
) -> Result<SessionKeys, StreamError> {
    let server_pk = public_key(server_secret)?;
    let (tx, rx) = split(&kx_digest(server_secret, client_pk, client_pk, &server_pk)?);
    Ok(SessionKeys { rx, tx })
}

/// `crypto_kx_client_session_keys`: the client's receive and transmit keys.
pub fn client_session_keys(
    client_secret: &[u8; KEY_BYTES],
    server_pk: &[u8; KEY_BYTES],
) -> Result<SessionKeys, StreamError> {
    let client_pk = public_key(client_secret)?;
    let (rx, tx) = split(&kx_digest(client_secret, server_pk, &client_pk, server_pk)?);
    Ok(SessionKeys { rx, tx })
}

/// The sending half: one secretstream pushed frame by frame.
pub struct Sealer {
    state: StreamXChaCha20Poly1305,
    header: Option<[u8; HEADER_BYTES]>,
    sent: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("sent", &self.sent).finish_non_exhaustive()
    }
}

impl Sealer {
    /// A stream under `key` with the (random) `header`, sent in front of the first frame.
    pub fn new(key: &[u8; KEY_BYTES], header: [u8; HEADER_BYTES]) -> Self {
        let state = StreamXChaCha20Poly1305::new(&SecretKey::from(*key), &Nonce::from(header));
        Self { state, header: Some(header), sent: 0 }
    }

    /// One frame's bytes: `[header ‖] chunk`; every [`REKEY_EVERY`]-th is tagged `REKEY`.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, StreamError> {
        self.sent += 1;
        let tag = if self.sent.is_multiple_of(REKEY_EVERY) { StreamTag::Rekey } else { StreamTag::Message };
        let mut chunk = vec![0u8; plaintext.len() + ABYTES];
        self.state.seal_chunk(plaintext, None, &mut chunk, &tag).map_err(|_| StreamError::Seal)?;
        Ok(match self.header.take() {
            Some(header) => [header.as_slice(), &chunk].concat(),
            None => chunk,
        })
    }

    /// The same as the base64 text a TEXT frame carries.
    pub fn seal_text(&mut self, plaintext: &str) -> Result<String, StreamError> {
        Ok(STANDARD.encode(self.seal(plaintext.as_bytes())?))
    }
}

/// The receiving half: the peer's secretstream, pulled frame by frame.
pub struct Opener {
    key: SecretKey,
    state: Option<StreamXChaCha20Poly1305>,
    since_rekey: u64,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener").field("since_rekey", &self.since_rekey).finish_non_exhaustive()
    }
}

impl Opener {
    /// Opens the stream the peer seals under `key` (its header arrives with its first frame).
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        Self { key: SecretKey::from(*key), state: None, since_rekey: 0 }
    }

    /// The plaintext of the next frame. Any error leaves the stream unusable: the caller
    /// closes the connection.
    pub fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, StreamError> {
        let chunk = match &self.state {
            Some(_) => frame,
            None => {
                if frame.len() < HEADER_BYTES + ABYTES {
                    return Err(StreamError::TooShort);
                }
                let header = Nonce::try_from(&frame[..HEADER_BYTES]).map_err(|_| StreamError::TooShort)?;
                self.state = Some(StreamXChaCha20Poly1305::new(&self.key, &header));
                &frame[HEADER_BYTES..]
            }
        };
        if chunk.len() < ABYTES {
            return Err(StreamError::TooShort);
        }
        self.since_rekey += 1;
        if self.since_rekey > REKEY_EVERY {
            return Err(StreamError::RekeyMissing);
        }
        let Some(state) = self.state.as_mut() else { return Err(StreamError::DoesNotOpen) };
        let mut plaintext = vec![0u8; chunk.len() - ABYTES];
        let tag = state.open_chunk(chunk, None, &mut plaintext).map_err(|_| StreamError::DoesNotOpen)?;
        match tag.as_byte() {
            TAG_REKEY => self.since_rekey = 0,
            TAG_FINAL => return Err(StreamError::Finished),
            _ => {}
        }
        Ok(plaintext)
    }

    /// The same from the base64 text of a TEXT frame.
    pub fn open_text(&mut self, text: &str) -> Result<Vec<u8>, StreamError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| StreamError::NotBase64)?;
        self.open(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Sealer, Opener) {
        let server = server_session_keys(&[1; 32], &public_key(&[2; 32]).unwrap()).unwrap();
        let client = client_session_keys(&[2; 32], &public_key(&[1; 32]).unwrap()).unwrap();
        assert_eq!(server.tx, client.rx);
        assert_eq!(server.rx, client.tx);
        (Sealer::new(&server.tx, [7; HEADER_BYTES]), Opener::new(&client.rx))
    }

    #[test]
    fn crypto_kx_test_vector() {
        // libsodium's crypto_kx with secret keys 0x01… (server) and 0x02… (client), computed
        // with libsodium (PyNaCl); see docs/api-protocol.md.
        let client = client_session_keys(&[2; 32], &public_key(&[1; 32]).unwrap()).unwrap();
        assert_eq!(hex(&client.rx), CLIENT_RX);
        assert_eq!(hex(&client.tx), CLIENT_TX);
    }

    #[test]
    fn first_frame_test_vector() {
        // The client's first frame of docs/api-protocol.md: its tx key from the vector above,
        // header bytes 0..23, `{"type":"message","text":"hi"}`; libsodium's
        // crypto_secretstream_xchacha20poly1305_pull opens it.
        let client = client_session_keys(&[2; 32], &public_key(&[1; 32]).unwrap()).unwrap();
        let mut sealer = Sealer::new(&client.tx, std::array::from_fn(|i| i as u8));
        let frame = sealer.seal_text(r#"{"type":"message","text":"hi"}"#).unwrap();
        assert_eq!(frame, FIRST_FRAME);
        assert_eq!(sealer.seal_text(r#"{"type":"abort"}"#).unwrap(), SECOND_FRAME);
        let server = server_session_keys(&[1; 32], &public_key(&[2; 32]).unwrap()).unwrap();
        assert_eq!(Opener::new(&server.rx).open_text(&frame).unwrap(), br#"{"type":"message","text":"hi"}"#);
    }

    const SECOND_FRAME: &str = "wUJIVVA3BOMmCfhWV7WA/95/ao0gUdVHWwoVyX4JIx/S";
    const FIRST_FRAME: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXov82v/CMGiJPdATEUy/flPKrJJAAwfxCjU99Y8KnFzaMqrogkxxUQgs6VqEjG+Q=";

    const CLIENT_RX: &str = "5a9d84a790ae8366f8d8cd4eb4ee2a655a8b506183f6b617f48704aadd43aa38";
    const CLIENT_TX: &str = "c9becc414472b0ae19bf7bdff034e3365486ee83d2f3e5b9d159114f7077d11f";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn frames_open_in_order_across_rekeys() {
        let (mut sealer, mut opener) = pair();
        for i in 0..(3 * REKEY_EVERY) {
            let text = format!("frame {i}");
            let frame = sealer.seal(text.as_bytes()).unwrap();
            assert_eq!(opener.open(&frame).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn replayed_dropped_and_swapped_frames_do_not_open() {
        let (mut sealer, mut opener) = pair();
        let first = sealer.seal(b"one").unwrap();
        let second = sealer.seal(b"two").unwrap();
        let third = sealer.seal(b"three").unwrap();
        assert_eq!(opener.open(&first).unwrap(), b"one");
        assert_eq!(opener.open(&first[HEADER_BYTES..]), Err(StreamError::DoesNotOpen), "replay");
        assert_eq!(opener.open(&third), Err(StreamError::DoesNotOpen), "gap");
        assert_eq!(opener.open(&second).unwrap(), b"two");
    }

    #[test]
    fn a_peer_that_never_rekeys_is_refused() {
        let key = [9u8; 32];
        let mut opener = Opener::new(&key);
        let mut state = StreamXChaCha20Poly1305::new(&SecretKey::from(key), &Nonce::from([3u8; HEADER_BYTES]));
        let mut refused = None;
        for i in 0..=REKEY_EVERY {
            let mut chunk = vec![0u8; 1 + ABYTES];
            state.seal_chunk(b"x", None, &mut chunk, &StreamTag::Message).unwrap();
            let frame = if i == 0 { [[3u8; HEADER_BYTES].as_slice(), &chunk].concat() } else { chunk };
            if let Err(e) = opener.open(&frame) {
                refused = Some((i, e));
                break;
            }
        }
        assert_eq!(refused, Some((REKEY_EVERY, StreamError::RekeyMissing)));
    }

    #[test]
    fn a_wrong_key_does_not_open() {
        let (mut sealer, _) = pair();
        let mut stranger = Opener::new(&[5; 32]);
        assert_eq!(stranger.open(&sealer.seal(b"hi").unwrap()), Err(StreamError::DoesNotOpen));
        assert_eq!(stranger.open_text("***"), Err(StreamError::NotBase64));
    }
}
