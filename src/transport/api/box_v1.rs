//! Protocol v1 of the direct API, pure (no I/O): the frames of ductor 0.18.2 — every frame after
//! `auth_ok` is `base64(nonce[24] ‖ box)`, the box NaCl's `crypto_box` (X25519, HSalsa20,
//! XSalsa20-Poly1305, the 16-byte tag before the ciphertext) under a fresh random nonce. There is
//! no sequence: v1 cannot tell a replayed, dropped or reordered frame (protocol v2 can).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::Aead;
use crypto_box::aead::generic_array::GenericArray;
use crypto_box::{PublicKey, SalsaBox, SecretKey};

/// Bytes of a v1 nonce.
pub const NONCE_BYTES: usize = 24;
/// Bytes of the Poly1305 tag.
const TAG_BYTES: usize = 16;

/// Why a v1 frame could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoxError {
    /// Not base64.
    #[error("the frame is not base64")]
    NotBase64,
    /// Shorter than a nonce and a tag.
    #[error("the frame is too short to be a box")]
    TooShort,
    /// The box does not authenticate under the negotiated keys.
    #[error("the frame does not open with the negotiated keys")]
    DoesNotOpen,
    /// The cipher refused.
    #[error("sealing failed")]
    Seal,
}

/// The box of one connection: this side's secret key and the peer's public key.
pub struct BoxV1 {
    salsa: SalsaBox,
}

impl std::fmt::Debug for BoxV1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxV1 { .. }")
    }
}

/// The X25519 public key of a secret key.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    SecretKey::from_bytes(*secret).public_key().to_bytes()
}

impl BoxV1 {
    /// The box between `own_secret` and `peer_public`.
    pub fn new(own_secret: &[u8; 32], peer_public: &[u8; 32]) -> Self {
        let salsa = SalsaBox::new(&PublicKey::from_bytes(*peer_public), &SecretKey::from_bytes(*own_secret));
        Self { salsa }
    }

    /// `base64(nonce ‖ tag ‖ ciphertext)` of `plaintext`.
    pub fn seal(&self, nonce: &[u8; NONCE_BYTES], plaintext: &[u8]) -> Result<String, BoxError> {
        let sealed = self.salsa.encrypt(GenericArray::from_slice(nonce), plaintext).map_err(|_| BoxError::Seal)?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// The plaintext of a frame's text.
    pub fn open(&self, text: &str) -> Result<Vec<u8>, BoxError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| BoxError::NotBase64)?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(BoxError::TooShort);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        self.salsa.decrypt(GenericArray::from_slice(nonce), sealed).map_err(|_| BoxError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of transports spec §6.3.5.
    const VECTOR: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXQQvnPWgOO9KuKrfWmvtabJnt97rqVMQMmzsdtL/9YJ35/16Sxs+/UDtiM0sCbQ==";

    fn nonce() -> [u8; NONCE_BYTES] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn the_spec_vector() {
        assert_eq!(STANDARD.encode(public_key(&[1; 32])), "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=");
        assert_eq!(STANDARD.encode(public_key(&[2; 32])), "zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=");
        let client = BoxV1::new(&[2; 32], &public_key(&[1; 32]));
        let frame = client.seal(&nonce(), br#"{"type":"message","text":"hi"}"#).unwrap();
        assert_eq!(frame, VECTOR);
        assert_eq!(STANDARD.decode(&frame).unwrap().len(), 70);
        let server = BoxV1::new(&[1; 32], &public_key(&[2; 32]));
        assert_eq!(server.open(VECTOR).unwrap(), br#"{"type":"message","text":"hi"}"#);
    }

    #[test]
    fn a_wrong_key_or_garbage_does_not_open() {
        let stranger = BoxV1::new(&[3; 32], &public_key(&[2; 32]));
        assert_eq!(stranger.open(VECTOR), Err(BoxError::DoesNotOpen));
        assert_eq!(stranger.open("not base64!"), Err(BoxError::NotBase64));
        assert_eq!(stranger.open("AAAA"), Err(BoxError::TooShort));
    }
}
