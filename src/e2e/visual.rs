//! Key visualisation (item 62, attack B11): 288 bits that both users compare out of band.
//!
//! The stored spec pages define the bytes (SHA1(original key)[0..16] ‖ SHA256(key at layer 46)[0..20]) but do not
//! carry an emoji table for secret chats; clients draw the 288 bits as a 12×12 grid of four colours, two bits per
//! cell, least significant bits of each byte first. [`cells`] gives that index sequence; mapping indices to colours
//! (or pictures) is the host's UI.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha1::{Digest, Sha1};
use sha2::Sha256;

/// Length of the visualisation in bytes (288 bits).
pub const VISUALISATION_LEN: usize = 36;
/// Cells of the 12×12 picture.
pub const CELLS: usize = 144;

/// SHA1(`original_key`)[0..16] ‖ SHA256(`key_at_layer_46`)[0..20]. For chats created at layer ≥ 46 both are the key
/// of the initial exchange.
pub fn visualisation(original_key: &[u8; 256], key_at_layer_46: &[u8; 256]) -> [u8; VISUALISATION_LEN] {
    let s1: [u8; 20] = Sha1::digest(original_key).into();
    let s2: [u8; 32] = Sha256::digest(key_at_layer_46).into();
    let mut v = [0u8; VISUALISATION_LEN];
    for (d, s) in v.iter_mut().zip(s1.iter().take(16).chain(s2.iter().take(20))) {
        *d = *s;
    }
    v
}

/// The 144 two-bit colour indices (0..=3) of the 12×12 picture, row by row.
pub fn cells(vis: &[u8; VISUALISATION_LEN]) -> [u8; CELLS] {
    let mut out = [0u8; CELLS];
    for (i, c) in out.iter_mut().enumerate() {
        let bit = i * 2;
        *c = vis.get(bit / 8).map_or(0, |b| (b >> (bit % 8)) & 3);
    }
    out
}
