//! BLAKE2s (RFC 7693, the `blake2` crate) with a chosen digest length, for the cron selector's
//! job fingerprints (`crn:t:<page>:<slot>:<fp>`, fp = BLAKE2s with a 4-byte digest of the job
//! id). The digest length is part of the parameter block, so a 4-byte digest is not a cut
//! 32-byte one.

use blake2::Blake2sVar;
use blake2::digest::{Update, VariableOutput};

/// Unkeyed BLAKE2s of `data` with a digest of `out_len` bytes (1..=32; clamped).
pub fn blake2s(data: &[u8], out_len: usize) -> Vec<u8> {
    let out_len = out_len.clamp(1, 32);
    let mut out = vec![0; out_len];
    // Both cannot fail: the length is within 1..=32 and the buffer has exactly that length.
    if let Ok(mut hasher) = Blake2sVar::new(out_len) {
        hasher.update(data);
        let _ = hasher.finalize_variable(&mut out);
    }
    out
}

/// The 8-hex-digit fingerprint of a text (BLAKE2s, 4-byte digest), as the cron selector uses.
pub fn fingerprint32(text: &str) -> String {
    blake2s(text.as_bytes(), 4).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc_7693_vector_and_python_hashlib_values() {
        assert_eq!(hex(&blake2s(b"abc", 32)), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
        assert_eq!(hex(&blake2s(b"", 32)), "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
        // hashlib.blake2s(x, digest_size=4).hexdigest()
        assert_eq!(fingerprint32(""), "36e9d246");
        assert_eq!(fingerprint32("abc"), "df7101d3");
        assert_eq!(fingerprint32("daily-report"), "34e9b89b");
        assert_eq!(hex(&blake2s(&[b'a'; 100], 4)), "2de18c23");
    }

    #[test]
    fn inputs_across_block_boundaries() {
        // hashlib.blake2s(b"a" * n).hexdigest()[:16] for n = 64, 65, 128
        assert_eq!(&hex(&blake2s(&[b'a'; 64], 32))[..16], "651d2f5f20952eac");
        assert_eq!(&hex(&blake2s(&[b'a'; 65], 32))[..16], "045f8ae18932119b");
        assert_eq!(&hex(&blake2s(&[b'a'; 128], 32))[..16], "3ac477e27353f901");
    }
}
