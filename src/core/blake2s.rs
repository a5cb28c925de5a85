//! BLAKE2s (RFC 7693) with a chosen digest length, for the cron selector's job fingerprints
//! (`crn:t:<page>:<slot>:<fp>`, fp = BLAKE2s with a 4-byte digest of the job id). The digest
//! length is part of the parameter block, so a 4-byte digest is not a cut 32-byte one.

const IV: [u32; 8] = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19];

const SIGMA: [[usize; 16]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

const BLOCK: usize = 64;

fn mix(v: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize, x: u32, y: u32) {
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(x);
    v[d] = (v[d] ^ v[a]).rotate_right(16);
    v[c] = v[c].wrapping_add(v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(12);
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(y);
    v[d] = (v[d] ^ v[a]).rotate_right(8);
    v[c] = v[c].wrapping_add(v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(7);
}

fn compress(h: &mut [u32; 8], block: &[u8; BLOCK], counter: u64, last: bool) {
    let mut m = [0u32; 16];
    for (word, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let mut v = [0u32; 16];
    v[..8].copy_from_slice(h);
    v[8..].copy_from_slice(&IV);
    // The counter is split into its low and high 32-bit words on purpose.
    v[12] ^= (counter & 0xFFFF_FFFF) as u32;
    v[13] ^= (counter >> 32) as u32;
    if last {
        v[14] = !v[14];
    }
    for s in &SIGMA {
        mix(&mut v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
        mix(&mut v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
        mix(&mut v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
        mix(&mut v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
        mix(&mut v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
        mix(&mut v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
        mix(&mut v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
        mix(&mut v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for i in 0..8 {
        h[i] ^= v[i] ^ v[i + 8];
    }
}

/// Unkeyed BLAKE2s of `data` with a digest of `out_len` bytes (1..=32; clamped).
pub fn blake2s(data: &[u8], out_len: usize) -> Vec<u8> {
    let out_len = out_len.clamp(1, 32);
    let mut h = IV;
    // Parameter block word 0: digest length, key length 0, fanout 1, depth 1.
    h[0] ^= 0x0101_0000 ^ out_len as u32;
    let mut counter: u64 = 0;
    let mut chunks = data.chunks(BLOCK).peekable();
    if chunks.peek().is_none() {
        compress(&mut h, &[0; BLOCK], 0, true);
    }
    while let Some(chunk) = chunks.next() {
        counter += chunk.len() as u64;
        let mut block = [0u8; BLOCK];
        block[..chunk.len()].copy_from_slice(chunk);
        compress(&mut h, &block, counter, chunks.peek().is_none());
    }
    h.iter().flat_map(|w| w.to_le_bytes()).take(out_len).collect()
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
