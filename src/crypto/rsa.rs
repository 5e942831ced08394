//! RSA for the auth-key handshake: server key fingerprints, the built-in Telegram keys, RSA_PAD (client encrypt, DC
//! decrypt), the legacy `SHA1(data) ‖ data ‖ padding` encoding still sent by Telethon and kurigram, and test-DC key
//! generation.
//!
//! The public operation (e = 65537) is variable time: everything in it is public. The private operation (DC role) is
//! constant time over the full modulus with `crypto-bigint`'s `pow` and is blinded with a fresh random r per call
//! (docs/CHECKLIST.md items 24, 75; the Marvin attack, RUSTSEC-2023-0071). The decoding that follows it does the same
//! work for every plaintext (attack B4): RSA_PAD is fixed-size, and the legacy SHA-1 is checked over a caller-given set
//! of candidate lengths, never over a length parsed from the secret plaintext. Every decryption failure is the single
//! [`RsaError::Decrypt`], so a caller can answer all of them with one byte-identical −404.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crypto_bigint::{
    NonZero, Odd, RandomBits, RandomMod, U64, U1024, U2048,
    modular::{FixedMontyForm, FixedMontyParams},
};
use rand_core::CryptoRng;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use super::aes::{ige_decrypt, ige_encrypt};
use super::dh::{be_bytes, has_small_factor, is_probable_prime};

/// Size of the RSA modulus and of every RSA block, in bytes.
pub const RSA_BYTES: usize = 256;
/// Bits of every supported RSA modulus (Telegram's keys and ours).
pub const KEY_BITS: u32 = 2048;
/// The public exponent of every Telegram key and of keys we generate.
pub const DEFAULT_E: u32 = 65537;
/// Longest inner data RSA_PAD can carry.
pub const RSA_PAD_MAX_DATA: usize = 144;
/// Size of RSA_PAD's `data_with_padding`, which [`rsa_pad_decrypt`] returns.
pub const RSA_PAD_DATA_LEN: usize = 192;
/// Longest inner data the legacy encoding can carry (255 − 20 bytes of SHA-1).
pub const LEGACY_MAX_DATA: usize = 235;
/// RSA_PAD retries with a fresh temp_key while the block is ≥ n. With n ≥ 2^2047 each try fails with probability
/// below 1/2, so this bound is only reached with a broken RNG.
pub const MAX_RSA_PAD_ATTEMPTS: u32 = 128;
/// Miller–Rabin rounds per 1024-bit prime in key generation (beyond FIPS 186-5's 5 for random 1024-bit candidates).
pub const KEYGEN_MR_ROUNDS: u32 = 8;

/// Errors of RSA key handling and of encryption. Decryption reports every failure as [`RsaError::Decrypt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RsaError {
    /// The modulus is not an odd 2048-bit number, or a value does not fit in 256 bytes.
    KeySize,
    /// The public exponent is even or below 3.
    Exponent,
    /// The private key's parts are inconsistent (p·q ≠ n, d does not invert e, d ≥ n).
    KeyMismatch,
    /// The plaintext is longer than the encoding allows.
    DataTooLong,
    /// RSA_PAD found no temp_key with a block below n within [`MAX_RSA_PAD_ATTEMPTS`].
    RetriesExhausted,
    /// Decryption failed (block ≥ n, bad hash, bad structure): deliberately one undistinguished error.
    Decrypt,
}

impl core::fmt::Display for RsaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RsaError::KeySize => "RSA modulus is not an odd 2048-bit number",
            RsaError::Exponent => "RSA public exponent is invalid",
            RsaError::KeyMismatch => "RSA private key parts are inconsistent",
            RsaError::DataTooLong => "data too long for the RSA encoding",
            RsaError::RetriesExhausted => "RSA_PAD found no block below the modulus",
            RsaError::Decrypt => "RSA decryption failed",
        })
    }
}

impl core::error::Error for RsaError {}

/// An RSA public key: a 2048-bit modulus and a small public exponent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RsaPublicKey {
    n: U2048,
    e: u32,
}

impl core::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "RsaPublicKey {{ fingerprint: {:016x}, e: {} }}",
            self.fingerprint(),
            self.e
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RsaPublicKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "RsaPublicKey {{ fingerprint: {=u64:x}, e: {} }}",
            self.fingerprint(),
            self.e
        )
    }
}

/// Writes a TL `bytes` header, body and padding into a hasher.
fn tl_bytes_into(h: &mut Sha1, data: &[u8]) {
    let len = data.len();
    let header_len = if len < 254 {
        h.update([len as u8]);
        1
    } else {
        h.update([0xfe, len as u8, (len >> 8) as u8, (len >> 16) as u8]);
        4
    };
    h.update(data);
    let pad = (4 - (header_len + len) % 4) % 4;
    h.update([0u8; 3].get(..pad).unwrap_or_default());
}

fn trim_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

/// Left-pads big-endian bytes to 256, refusing longer values.
fn pad256(b: &[u8]) -> Result<[u8; RSA_BYTES], RsaError> {
    let digits = trim_leading_zeros(b);
    let mut out = [0u8; RSA_BYTES];
    let dst = out
        .get_mut(RSA_BYTES.checked_sub(digits.len()).ok_or(RsaError::KeySize)?..)
        .ok_or(RsaError::KeySize)?;
    dst.copy_from_slice(digits);
    Ok(out)
}

fn check_modulus(n: &U2048) -> Result<Odd<U2048>, RsaError> {
    if n.bit_width_vartime() != KEY_BITS {
        return Err(RsaError::KeySize);
    }
    Odd::new(*n).into_option().ok_or(RsaError::KeySize)
}

impl RsaPublicKey {
    /// A key from a 512-digit big-endian hex modulus, for `const` tables. Evaluated at compile time in a `const`,
    /// where a malformed literal is a build error; the modulus is checked again by [`RsaPublicKey::validate`].
    pub const fn from_be_hex(n_hex: &str, e: u32) -> Self {
        RsaPublicKey {
            n: U2048::from_be_hex(n_hex),
            e,
        }
    }

    /// A key from big-endian modulus bytes (leading zeros allowed) and exponent; the modulus must be an odd
    /// 2048-bit number and e odd and ≥ 3.
    pub fn from_be_bytes(n: &[u8], e: u32) -> Result<Self, RsaError> {
        let key = RsaPublicKey {
            n: U2048::from_be_slice(&pad256(n)?),
            e,
        };
        key.validate()?;
        Ok(key)
    }

    /// Checks the modulus size and parity and the exponent.
    pub fn validate(&self) -> Result<(), RsaError> {
        check_modulus(&self.n)?;
        if self.e < 3 || self.e.is_multiple_of(2) {
            return Err(RsaError::Exponent);
        }
        Ok(())
    }

    /// The modulus as 256 big-endian bytes.
    pub fn n_bytes(&self) -> [u8; RSA_BYTES] {
        be_bytes(&self.n)
    }

    /// The public exponent.
    pub fn e(&self) -> u32 {
        self.e
    }

    /// Telegram's key fingerprint: the last 8 bytes of SHA1 of the TL serialisation of `rsa_public_key n:bytes
    /// e:bytes` (big-endian magnitudes without leading zeros), read as a little-endian integer.
    pub fn fingerprint(&self) -> u64 {
        let n = self.n_bytes();
        let e = self.e.to_be_bytes();
        let mut h = Sha1::new();
        tl_bytes_into(&mut h, trim_leading_zeros(&n));
        tl_bytes_into(&mut h, trim_leading_zeros(&e));
        let digest: [u8; 20] = h.finalize().into();
        let mut tail = [0u8; 8];
        tail.copy_from_slice(digest.get(12..).unwrap_or(&[0; 8]));
        u64::from_le_bytes(tail)
    }

    /// m^e mod n on a value already known to be below n. Variable time: all inputs are public.
    fn public_op(&self, m: &U2048) -> Result<U2048, RsaError> {
        let params = FixedMontyParams::new_vartime(check_modulus(&self.n)?);
        Ok(FixedMontyForm::new(m, &params)
            .pow_vartime(&U64::from_u32(self.e))
            .retrieve())
    }

    /// Raw RSA on a 256-byte big-endian block, which must be below n.
    pub fn encrypt_raw(&self, block: &[u8; RSA_BYTES]) -> Result<[u8; RSA_BYTES], RsaError> {
        self.validate()?;
        let m = U2048::from_be_slice(block);
        if m >= self.n {
            return Err(RsaError::KeySize);
        }
        Ok(be_bytes(&self.public_op(&m)?))
    }
}

/// Telegram's built-in server keys (production, older production and test DC), from
/// `tests/data/telegram_rsa_keys.json`. A client picks the one whose [`RsaPublicKey::fingerprint`] the server offers.
pub const TELEGRAM_KEYS: &[RsaPublicKey] = &[
    // production main key, fingerprint d09d1d85de64fd85
    RsaPublicKey::from_be_hex(
        concat!(
            "e8bb3305c0b52c6cf2afdf7637313489e63e05268e5badb601af417786472e5f93b85438968e20e6729a301c0afc121bf7151f834436f7fd",
            "a680847a66bf64accec78ee21c0b316f0edafe2f41908da7bd1f4a5107638eeb67040ace472a14f90d9f7c2b7def99688ba3073adb5750bb",
            "02964902a359fe745d8170e36876d4fd8a5d41b2a76cbff9a13267eb9580b2d06d10357448d20d9da2191cb5d8c93982961cdfdeda629e37",
            "f1fb09a0722027696032fe61ed663db7a37f6f263d370f69db53a0dc0a1748bdaaff6209d5645485e6e001d1953255757e4b8e42813347b1",
            "1da6ab500fd0ace7e6dfa3736199ccaf9397ed0745a427dcfa6cd67bcb1acff3"
        ),
        65537,
    ),
    // production key (Telethon 'current' list #0), fingerprint 0bc35f3509f7b7a5
    RsaPublicKey::from_be_hex(
        concat!(
            "aeec36c8ffc109cb099624685b97815415657bd76d8c9c3e398103d7ad16c9bba6f525ed0412d7ae2c2de2b44e77d72cbf4b7438709a4e64",
            "6a05c43427c7f184debf72947519680e651500890c6832796dd11f772c25ff8f576755afe055b0a3752c696eb7d8da0d8be1faf38c9bdd97",
            "ce0a77d3916230c4032167100edd0f9e7a3a9b602d04367b689536af0d64b613ccba7962939d3b57682beb6dae5b608130b2e52aca78ba02",
            "3cf6ce806b1dc49c72cf928a7199d22e3d7ac84e47bc9427d0236945d10dbd15177bab413fbf0edfda09f014c7a7da088dde9759702ca760",
            "af2b8e4e97cc055c617bd74c3d97008635b98dc4d621b4891da9fb0473047927"
        ),
        65537,
    ),
    // production key (Telethon 'current' list #1), fingerprint 15ae5fa8b5529542
    RsaPublicKey::from_be_hex(
        concat!(
            "bdf2c77d81f6afd47bd30f29ac76e55adfe70e487e5e48297e5a9055c9c07d2b93b4ed3994d3eca5098bf18d978d54f8b7c713eb10247607",
            "e69af9ef44f38e28f8b439f257a11572945cc0406fe3f37bb92b79112db69eedf2dc71584a661638ea5becb9e23585074b80d57d9f5710dd",
            "30d2da940e0ada2f1b878397dc1a72b5ce2531b6f7dd158e09c828d03450ca0ff8a174deacebcaa22dde84ef66ad370f259d18af80663801",
            "2da0ca4a70baa83d9c158f3552bc9158e69bf332a45809e1c36905a5caa12348dd57941a482131be7b2355a5f4635374f3bd3ddf5ff925bf",
            "4809ee27c1e67d9120c5fe08a9de458b1b4a3c5d0a428437f2beca81f4e2d5ff"
        ),
        65537,
    ),
    // production key (Telethon 'current' list #2), fingerprint aeae98e13cd7f94f
    RsaPublicKey::from_be_hex(
        concat!(
            "b3f762b739be98f343eb1921cf0148cfa27ff7af02b6471213fed9daa0098976e667750324f1abcea4c31e43b7d11f1579133f2b3d9fe274",
            "74e462058884e5e1b123be9cbbc6a443b2925c08520e7325e6f1a6d50e117eb61ea49d2534c8bb4d2ae4153fabe832b9edf4c5755fdd8b19",
            "940b81d1d96cf433d19e6a22968a85dc80f0312f596bd2530c1cfb28b5fe019ac9bc25cd9c2a5d8a0f3a1c0c79bcca524d315b5e21b5c26b",
            "46babe3d75d06d1cd33329ec782a0f22891ed1db42a1d6c0dea431428bc4d7aabdcf3e0eb6fda4e23eb7733e7727e9a1915580796c55188d",
            "2596d2665ad1182ba7abf15aaa5a8b779ea996317a20ae044b820bff35b6e8a1"
        ),
        65537,
    ),
    // production key (Telethon 'current' list #3), fingerprint 5a181b2235057d98
    RsaPublicKey::from_be_hex(
        concat!(
            "be6a71558ee577ff03023cfa17aab4e6c86383cff8a7ad38edb9fafe6f323f2d5106cbc8cafb83b869cffd1ccf121cd743d509e589e68765",
            "c96601e813dc5b9dfc4be415c7a6526132d0035ca33d6d6075d4f535122a1cdfe017041f1088d1419f65c8e5490ee613e16dbf662698c0f5",
            "4870f0475fa893fc41eb55b08ff1ac211bc045ded31be27d12c96d8d3cfc6a7ae8aa50bf2ee0f30ed507cc2581e3dec56de94f5dc0a7abee",
            "0be990b893f2887bd2c6310a1e0a9e3e38bd34fded2541508dc102a9c9b4c95effd9dd2dfe96c29be647d6c69d66ca500843cfaed6e44019",
            "6f1dbe0e2e22163c61ca48c79116fa77216726749a976a1c4b0944b5121e8c01"
        ),
        65537,
    ),
    // production key used by Telegram Android, fingerprint 9dbe5a4c45febeff
    RsaPublicKey::from_be_hex(
        concat!(
            "c45fffd0cd3eff93f381d35a8135fe27e74982bef96424ee886f22e31ed8c26245fa388e1828e6ed7ec12c268c735fa13996032f7f86be57",
            "bf00aca45b5aa8b9a089315c7f1feda5f0b1572de959d8f2dac136fc03b0654ea5b32f775be41ba030d5b388bf53ba147c227d5bc0a634ed",
            "056947d8a7e738c0b0018b064fa61add039d5c8c7f55e8a7694b0853669b4178ca470079a2c20883db19675d9622d8f31104848e063b6975",
            "53791933020e74e9c018916d8140284def851d1e85d6cf5a742559075b5e2ff85ff51f9699e909c32815cf4318107ef2e94e3d4f8e7efd6e",
            "ce17a5fa8345b48f5b924abb18e2a37bb70c5b4da77dcdd199ef2b3ef6ff8fb9"
        ),
        65537,
    ),
    // older production key (Telethon 'old' list #0), fingerprint c3b42b026ce86b21
    RsaPublicKey::from_be_hex(
        concat!(
            "c150023e2f70db7985ded064759cfecf0af328e69a41daf4d6f01b538135a6f91f8f8b2a0ec9ba9720ce352efcf6c5680ffc424bd6348649",
            "02de0b4bd6d49f4e580230e3ae97d95c8b19442b3c0a10d8f5633fecedd6926a7f6dab0ddb7d457f9ea81b8465fcd6fffeed114011df91c0",
            "59caedaf97625f6c96ecc74725556934ef781d866b34f011fce4d835a090196e9a5f0e4449af7eb697ddb9076494ca5f81104a305b6dd276",
            "65722c46b60e5df680fb16b210607ef217652e60236c255f6a28315f4083a96791d7214bf64c1df4fd0db1944fb26a2a57031b32eee64ad1",
            "5a8ba68885cde74a5bfc920f6abf59ba5c75506373e7130f9042da922179251f"
        ),
        65537,
    ),
    // older production key (Telethon 'old' list #1), fingerprint 9a996a1db11c729b
    RsaPublicKey::from_be_hex(
        concat!(
            "c6aeda78b02a251db4b6441031f467fa871faed32526c436524b1fb3b5dca28efb8c089dd1b46d92c895993d87108254951c5f001a0f055f",
            "3063dcd14d431a300eb9e29517e359a1c9537e5e87ab1b116faecf5d17546ebc21db234d9d336a693efcb2b6fbcca1e7d1a0be414dca408a",
            "11609b9c4269a920b09fed1f9a1597be02761430f09e4bc48fcafbe289054c99dba51b6b5eb7d9c3a2ab4e490545b4676bd620e93804bcac",
            "93bf94f73f92c729ca899477ff17625ef14a934d51dc11d5f8650a3364586b3a52fcff2fedec8a8406cac4e751705a472e55707e3c8cd559",
            "4342b119c6c3293532d85dbe9271ed54a2fd18b4dc79c04a30951107d5639397"
        ),
        65537,
    ),
    // older production key (Telethon 'old' list #2), fingerprint b05b2a6f70cdea78
    RsaPublicKey::from_be_hex(
        concat!(
            "b1066749655935f0a5936f517034c943bea7f3365a8931ae52c8bcb14856f004b83d26cf2839be0f22607470d67481771c1ce5ec31de16b2",
            "0bbaa4ecd2f7d2ecf6b6356f27501c226984263edc046b89fb6d3981546b01d7bd34fedcfcc1058e2d494bda732ff813e50e1c6ae249890b",
            "225f82b22b1e55fcb063dc3c0e18e91c28d0c4aa627dec8353eee6038a95a4fd1ca984eb09f94aeb7a2220635a8ceb450ea7e61d915cdb4e",
            "ecedaa083aa3801daf071855ec1fb38516cb6c2996d2d60c0ecbcfa57e4cf1fb0ed39b2f37e94ab4202ecf595e167b3ca62669a6da520859",
            "fb6d6c6203dfdfc79c75ec3ee97da8774b2da903e3435f2cd294670a75a526c1"
        ),
        65537,
    ),
    // older production key (Telethon 'old' list #3), fingerprint 71e025b6c76033e3
    RsaPublicKey::from_be_hex(
        concat!(
            "c2a8c55b4a62e2b78a19b91cf692bcdc4ba7c23fe4d06f194e2a0c30f6d9996f7d1a2bcc89bc1ac4333d44359a6c433252d1a8402d997037",
            "8b5912b75bc8cc3fa76710a025bcb9032df0b87d7607cc53b928712a174ea2a80a8176623588119d42ffce40205c6d72160860d8d80b22a8",
            "b8651907cf388effbef29cd7cf2b4eb8a872052da1351cfe7fec214ce48304ea472bd66329d60115b3420d08f6894b0410b6ab9450249967",
            "617670c932f7cbdb5d6fbcce1e492c595f483109999b2661fcdeec31b196429b7834c7211a93c6789d9ee601c18c39e521fda9d7264e61e5",
            "18add6f0712d2d5228204b851e13c4f322e5c5431c3b7f31089668486aadc59f"
        ),
        65537,
    ),
    // test-DC key, fingerprint b25898df208d2603
    RsaPublicKey::from_be_hex(
        concat!(
            "c8c11d635691fac091dd9489aedced2932aa8a0bcefef05fa800892d9b52ed03200865c9e97211cb2ee6c7ae96d3fb0e15aeffd66019b44a",
            "08a240cfdd2868a85e1f54d6fa5deaa041f6941ddf302690d61dc476385c2fa655142353cb4e4b59f6e5b6584db76fe8b1370263246c010c",
            "93d011014113ebdf987d093f9d37c2be48352d69a1683f8f6e6c2167983c761e3ab169fde5daaa12123fa1beab621e4da5935e9c198f82f3",
            "5eae583a99386d8110ea6bd1abb0f568759f62694419ea5f69847c43462abef858b4cb5edc84e7b9226cd7bd7e183aa974a712c079dde85b",
            "9dc063b8a5c08e8f859c0ee5dcd824c7807f20153361a7f63cfd2a433a1be7f5"
        ),
        65537,
    ),
];

/// The built-in key with this fingerprint, if any.
pub fn find_telegram_key(fingerprint: u64) -> Option<&'static RsaPublicKey> {
    TELEGRAM_KEYS.iter().find(|k| k.fingerprint() == fingerprint)
}

fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RSA_PAD (auth_key step 4.1): pads `data` (≤ 144 bytes) with random bytes to 192, reverses it, appends
/// SHA256(temp_key ‖ data_with_padding), encrypts with AES-256-IGE under a random temp_key and a zero iv, prepends
/// temp_key ⊕ SHA256(aes_encrypted), and retries with a new temp_key while the 256-byte result is ≥ n; then RSA.
pub fn rsa_pad_encrypt<R: CryptoRng + ?Sized>(
    key: &RsaPublicKey,
    data: &[u8],
    rng: &mut R,
) -> Result<[u8; RSA_BYTES], RsaError> {
    key.validate()?;
    if data.len() > RSA_PAD_MAX_DATA {
        return Err(RsaError::DataTooLong);
    }
    let mut data_with_padding = Zeroizing::new([0u8; RSA_PAD_DATA_LEN]);
    let (head, tail) = data_with_padding.split_at_mut(data.len());
    head.copy_from_slice(data);
    rng.fill_bytes(tail);
    let mut block = Zeroizing::new([0u8; RSA_BYTES]);
    let mut temp_key = Zeroizing::new([0u8; 32]);
    for _ in 0..MAX_RSA_PAD_ATTEMPTS {
        rng.fill_bytes(&mut temp_key[..]);
        let (temp_key_xor, aes_encrypted) = block.split_at_mut(32);
        // aes_encrypted starts as data_with_hash = data_pad_reversed ‖ SHA256(temp_key ‖ data_with_padding).
        let (rev, hash) = aes_encrypted.split_at_mut(RSA_PAD_DATA_LEN);
        for (r, d) in rev.iter_mut().zip(data_with_padding.iter().rev()) {
            *r = *d;
        }
        hash.copy_from_slice(&sha256_parts(&[&temp_key[..], &data_with_padding[..]]));
        ige_encrypt(&temp_key, &[0u8; 32], aes_encrypted).map_err(|_| RsaError::DataTooLong)?;
        let mask = sha256_parts(&[aes_encrypted]);
        for ((o, k), m) in temp_key_xor.iter_mut().zip(temp_key.iter()).zip(mask.iter()) {
            *o = k ^ m;
        }
        let value = U2048::from_be_slice(&block[..]);
        if value < key.n {
            return Ok(be_bytes(&key.public_op(&value)?));
        }
    }
    Err(RsaError::RetriesExhausted)
}

/// The legacy encoding `RSA(SHA1(data) ‖ data ‖ random padding to 255 bytes)` that Telethon and kurigram still send
/// (and Telegram's DCs accept). Kept for tests of the DC role and for completeness; new clients use RSA_PAD.
pub fn legacy_encrypt<R: CryptoRng + ?Sized>(
    key: &RsaPublicKey,
    data: &[u8],
    rng: &mut R,
) -> Result<[u8; RSA_BYTES], RsaError> {
    key.validate()?;
    if data.len() > LEGACY_MAX_DATA {
        return Err(RsaError::DataTooLong);
    }
    // Byte 0 stays zero, so the value is below 2^2040 < n.
    let mut block = Zeroizing::new([0u8; RSA_BYTES]);
    let (_, rest) = block.split_at_mut(1);
    let (hash, body) = rest.split_at_mut(20);
    hash.copy_from_slice(&Sha1::digest(data));
    let (d, pad) = body.split_at_mut(data.len());
    d.copy_from_slice(data);
    rng.fill_bytes(pad);
    let value = U2048::from_be_slice(&block[..]);
    Ok(be_bytes(&key.public_op(&value)?))
}

/// A 256-byte big-endian secret number, wiped when dropped.
pub type SecretBytes = Zeroizing<[u8; RSA_BYTES]>;

/// An RSA private key for the DC role. `d` (and p, q when known) are zeroized on drop and never printed.
pub struct RsaPrivateKey {
    public: RsaPublicKey,
    d: U2048,
    primes: Option<(U2048, U2048)>,
    params: FixedMontyParams<{ U2048::LIMBS }>,
}

impl Drop for RsaPrivateKey {
    fn drop(&mut self) {
        self.d.zeroize();
        if let Some((p, q)) = self.primes.as_mut() {
            p.zeroize();
            q.zeroize();
        }
    }
}

impl zeroize::ZeroizeOnDrop for RsaPrivateKey {}

impl core::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "RsaPrivateKey {{ fingerprint: {:016x}, .. }}",
            self.public.fingerprint()
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RsaPrivateKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "RsaPrivateKey {{ fingerprint: {=u64:x}, .. }}",
            self.public.fingerprint()
        )
    }
}

impl RsaPrivateKey {
    /// A private key from big-endian parts. Checks n (odd, 2048 bits), e, 0 < d < n, p·q = n when primes are given,
    /// and that d really inverts e (one private operation on a fixed value).
    pub fn from_be_parts(n: &[u8], e: u32, d: &[u8], primes: Option<(&[u8], &[u8])>) -> Result<Self, RsaError> {
        let public = RsaPublicKey::from_be_bytes(n, e)?;
        let mut d_buf = Zeroizing::new(pad256(d)?);
        let d = U2048::from_be_slice(&d_buf[..]);
        d_buf.zeroize();
        let primes = match primes {
            Some((p, q)) => {
                let mut pb = Zeroizing::new(pad256(p)?);
                let mut qb = Zeroizing::new(pad256(q)?);
                let parts = (U2048::from_be_slice(&pb[..]), U2048::from_be_slice(&qb[..]));
                pb.zeroize();
                qb.zeroize();
                Some(parts)
            }
            None => None,
        };
        Self::from_parts(public, d, primes)
    }

    fn from_parts(public: RsaPublicKey, d: U2048, primes: Option<(U2048, U2048)>) -> Result<Self, RsaError> {
        let odd = check_modulus(&public.n)?;
        // Kept as (smaller, larger): PKCS#1 files usually list the larger prime first.
        let primes = primes.map(|(a, b)| if a < b { (a, b) } else { (b, a) });
        let key = RsaPrivateKey {
            public,
            d,
            primes,
            params: FixedMontyParams::new(odd),
        };
        if d.is_zero_vartime() || d >= public.n {
            return Err(RsaError::KeyMismatch);
        }
        if let Some((p, q)) = &key.primes {
            let (lo, hi) = p.widening_mul(q);
            if lo != public.n || !hi.is_zero_vartime() || p == q {
                return Err(RsaError::KeyMismatch);
            }
        }
        // (x^d)^e must give back x: catches a d that does not belong to (n, e).
        let x = U2048::from_u32(0x1234_5679);
        let y = FixedMontyForm::new(&x, &key.params).pow(&key.d).retrieve();
        if public.public_op(&y)? != x {
            return Err(RsaError::KeyMismatch);
        }
        Ok(key)
    }

    /// Generates a 2048-bit key with e = 65537 for a test DC. Primes are random 1024-bit numbers with the two top
    /// bits set, sieved by trial division and tested with [`KEYGEN_MR_ROUNDS`] Miller–Rabin rounds. Key generation
    /// runs in variable time (rejected candidates leak only that they were rejected); it is meant for setting up a
    /// test DC, not for use in a timing-exposed loop.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RsaError> {
        let e = U2048::from_u32(DEFAULT_E);
        loop {
            let p = random_prime_1024(rng);
            let q = random_prime_1024(rng);
            if p == q {
                continue;
            }
            let (p, q) = if p < q { (p, q) } else { (q, p) };
            let (pw, qw) = (p.resize::<{ U2048::LIMBS }>(), q.resize::<{ U2048::LIMBS }>());
            let n = pw.wrapping_mul(&qw);
            let phi = pw.wrapping_sub(&U2048::ONE).wrapping_mul(&qw.wrapping_sub(&U2048::ONE));
            let Some(d) = e
                .invert_mod(&NonZero::new(phi).into_option().ok_or(RsaError::KeySize)?)
                .into_option()
            else {
                continue;
            };
            let public = RsaPublicKey { n, e: DEFAULT_E };
            if public.validate().is_err() {
                continue;
            }
            return Self::from_parts(public, d, Some((pw, qw)));
        }
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// The private exponent as 256 big-endian bytes (zeroized when dropped).
    pub fn d_bytes(&self) -> Zeroizing<[u8; RSA_BYTES]> {
        Zeroizing::new(be_bytes(&self.d))
    }

    /// p and q (p < q) as 256-byte big-endian numbers, when known.
    pub fn primes_bytes(&self) -> Option<(SecretBytes, SecretBytes)> {
        self.primes
            .as_ref()
            .map(|(p, q)| (Zeroizing::new(be_bytes(p)), Zeroizing::new(be_bytes(q))))
    }

    /// PKCS#1 CRT parameters for the order (prime1, prime2) = (larger, smaller) prime: d mod (prime1 − 1),
    /// d mod (prime2 − 1) and prime2^-1 mod prime1, when the primes are known.
    pub(crate) fn crt_params(&self) -> Option<[U2048; 3]> {
        let (small, big) = self.primes.as_ref()?;
        let big_m1 = NonZero::new(big.wrapping_sub(&U2048::ONE)).into_option()?;
        let small_m1 = NonZero::new(small.wrapping_sub(&U2048::ONE)).into_option()?;
        let big_odd = Odd::new(*big).into_option()?;
        let coefficient = small.invert_odd_mod(&big_odd).into_option()?;
        Some([self.d.rem(&big_m1), self.d.rem(&small_m1), coefficient])
    }

    /// c^d mod n, blinded: c' = c·r^e, m' = c'^d (constant-time `pow` over all 2048 bits of d), m = m'·r^-1; the
    /// result is re-encrypted and compared with c to catch faults. `c` must be below n.
    fn private_op<R: CryptoRng + ?Sized>(&self, c: &U2048, rng: &mut R) -> Result<U2048, RsaError> {
        let nz = NonZero::new(self.public.n).into_option().ok_or(RsaError::Decrypt)?;
        let e = U64::from_u32(self.public.e);
        for _ in 0..MAX_RSA_PAD_ATTEMPTS {
            let mut r = U2048::random_mod_vartime(rng, &nz);
            let mut r_m = FixedMontyForm::new(&r, &self.params);
            r.zeroize();
            // r shares a factor with n with negligible probability; draw again if so.
            let Some(mut r_inv) = r_m.invert().into_option() else {
                continue;
            };
            let mut blinded = FixedMontyForm::new(c, &self.params).mul(&r_m.pow_vartime(&e));
            let mut m_blinded = blinded.pow(&self.d);
            let m = m_blinded.mul(&r_inv).retrieve();
            r_m.zeroize();
            r_inv.zeroize();
            blinded.zeroize();
            m_blinded.zeroize();
            if FixedMontyForm::new(&m, &self.params).pow_vartime(&e).retrieve() != *c {
                return Err(RsaError::Decrypt);
            }
            return Ok(m);
        }
        Err(RsaError::Decrypt)
    }

    /// Raw blinded RSA decryption of a 256-byte block; fails with [`RsaError::Decrypt`] if it is ≥ n.
    pub fn decrypt_raw<R: CryptoRng + ?Sized>(
        &self,
        block: &[u8; RSA_BYTES],
        rng: &mut R,
    ) -> Result<Zeroizing<[u8; RSA_BYTES]>, RsaError> {
        let c = U2048::from_be_slice(block);
        if c >= self.public.n {
            return Err(RsaError::Decrypt);
        }
        let mut m = self.private_op(&c, rng)?;
        let out = Zeroizing::new(be_bytes(&m));
        m.zeroize();
        Ok(out)
    }
}

fn random_prime_1024<R: CryptoRng + ?Sized>(rng: &mut R) -> U1024 {
    let top = U1024::from_u8(0b11).shl_vartime(1022);
    let e = crypto_bigint::Limb::from_u32(DEFAULT_E);
    loop {
        let cand = U1024::random_bits(rng, 1024).bitor(&top).bitor(&U1024::ONE);
        // p − 1 must be prime to e, i.e. p mod e ≠ 1 (e is prime).
        if cand
            .rem_limb(
                NonZero::new(e)
                    .into_option()
                    .unwrap_or(NonZero::<crypto_bigint::Limb>::ONE),
            )
            .0
            == 1
        {
            continue;
        }
        if has_small_factor(&cand) {
            continue;
        }
        if is_probable_prime(&cand, 1, rng) && is_probable_prime(&cand, KEYGEN_MR_ROUNDS, rng) {
            return cand;
        }
    }
}

/// The hashing and cipher work one inner-data decoding did, for work-equivalence tests (docs/CHECKLIST.md items 24 and
/// 74, attack B4): it must be the same for every 256-byte plaintext, valid or not. Not part of the stable API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecodeWork {
    /// SHA-1 calls.
    pub sha1_calls: u32,
    /// Bytes hashed by SHA-1, over all calls.
    pub sha1_bytes: u64,
    /// SHA-256 calls.
    pub sha256_calls: u32,
    /// Bytes hashed by SHA-256, over all calls.
    pub sha256_bytes: u64,
    /// AES blocks run through IGE.
    pub aes_blocks: u64,
}

/// Work accounting for the decoder; `()` records nothing and compiles away.
trait DecodeMeter {
    fn sha1(&mut self, bytes: usize);
    fn sha256(&mut self, bytes: usize);
    fn aes(&mut self, bytes: usize);
}

impl DecodeMeter for () {
    #[inline(always)]
    fn sha1(&mut self, _: usize) {}
    #[inline(always)]
    fn sha256(&mut self, _: usize) {}
    #[inline(always)]
    fn aes(&mut self, _: usize) {}
}

impl DecodeMeter for DecodeWork {
    fn sha1(&mut self, bytes: usize) {
        self.sha1_calls = self.sha1_calls.saturating_add(1);
        self.sha1_bytes = self.sha1_bytes.saturating_add(bytes as u64);
    }
    fn sha256(&mut self, bytes: usize) {
        self.sha256_calls = self.sha256_calls.saturating_add(1);
        self.sha256_bytes = self.sha256_bytes.saturating_add(bytes as u64);
    }
    fn aes(&mut self, bytes: usize) {
        self.aes_blocks = self.aes_blocks.saturating_add(bytes as u64 / 16);
    }
}

/// RSA_PAD decode of 256 plaintext bytes: returns data_with_padding and whether the hash matched. Fixed-size work
/// (two SHA-256 over 224 bytes, 14 AES blocks) and no branch on the plaintext.
fn rsa_pad_unwrap<M: DecodeMeter>(
    plain: &[u8; RSA_BYTES],
    meter: &mut M,
) -> (Zeroizing<[u8; RSA_PAD_DATA_LEN]>, Choice) {
    let mut buf = Zeroizing::new(*plain);
    let (temp_key_xor, aes_encrypted) = buf.split_at_mut(32);
    meter.sha256(aes_encrypted.len());
    let mut mask = Zeroizing::new(sha256_parts(&[aes_encrypted]));
    let mut temp_key = Zeroizing::new([0u8; 32]);
    for ((k, x), m) in temp_key.iter_mut().zip(temp_key_xor.iter()).zip(mask.iter()) {
        *k = x ^ m;
    }
    mask.zeroize();
    let mut out = Zeroizing::new([0u8; RSA_PAD_DATA_LEN]);
    // 224 bytes: always block-aligned, so this cannot fail (the branch is on a constant length, not on data).
    meter.aes(aes_encrypted.len());
    if ige_decrypt(&temp_key, &[0u8; 32], aes_encrypted).is_err() {
        return (out, Choice::from(0));
    }
    let (rev, hash) = aes_encrypted.split_at(RSA_PAD_DATA_LEN);
    for (o, r) in out.iter_mut().zip(rev.iter().rev()) {
        *o = *r;
    }
    meter.sha256(temp_key.len() + out.len());
    let want = sha256_parts(&[&temp_key[..], &out[..]]);
    let ok = want.ct_eq(hash);
    (out, ok)
}

/// RSA_PAD decryption for the DC role (item 24): blinded constant-time RSA, temp_key = temp_key_xor ⊕
/// SHA256(aes_encrypted), AES-256-IGE with a zero iv, byte reversal, and a constant-time check of
/// SHA256(temp_key ‖ data_with_padding). Returns the 192-byte data_with_padding: the caller TL-parses the inner data
/// and ignores the padding. Every failure is [`RsaError::Decrypt`].
pub fn rsa_pad_decrypt<R: CryptoRng + ?Sized>(
    key: &RsaPrivateKey,
    block: &[u8; RSA_BYTES],
    rng: &mut R,
) -> Result<Zeroizing<[u8; RSA_PAD_DATA_LEN]>, RsaError> {
    let plain = key.decrypt_raw(block, rng)?;
    let (data, ok) = rsa_pad_unwrap(&plain, &mut ());
    if bool::from(ok) {
        Ok(data)
    } else {
        Err(RsaError::Decrypt)
    }
}

/// Whether a legacy 255-byte plaintext (`SHA1(data) ‖ data ‖ padding`) carries the SHA-1 of its first `data_len`
/// data bytes. The digest comparison is constant time; the hashing time depends only on `data_len`.
pub fn legacy_sha1_matches(plain: &[u8; 255], data_len: usize) -> bool {
    bool::from(legacy_check(plain, data_len, &mut ()))
}

fn legacy_check<M: DecodeMeter>(plain: &[u8; 255], data_len: usize, meter: &mut M) -> Choice {
    let (hash, body) = plain.split_at(20);
    // data_len is public (a candidate length, never read from the plaintext).
    let len_ok = Choice::from(u8::from(data_len <= LEGACY_MAX_DATA));
    let data = body.get(..data_len.min(LEGACY_MAX_DATA)).unwrap_or_default();
    meter.sha1(data.len());
    let mut digest: [u8; 20] = Sha1::digest(data).into();
    let ok = len_ok & digest.ct_eq(hash);
    digest.zeroize();
    ok
}

/// Which encoding an inner data block arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InnerEncoding {
    /// RSA_PAD: [`InnerData::data`] is the 192-byte data_with_padding.
    RsaPad,
    /// Legacy `SHA1 ‖ data ‖ padding`: [`InnerData::data`] is exactly the hashed TL object.
    LegacySha1,
}

/// Decrypted `p_q_inner_data*` bytes; zeroized on drop.
pub struct InnerData {
    buf: [u8; LEGACY_MAX_DATA],
    len: usize,
    // 1 for the legacy encoding, 0 for RSA_PAD: set by a constant-time select, read only once accepted.
    legacy: u8,
}

impl Drop for InnerData {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for InnerData {}

impl core::fmt::Debug for InnerData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "InnerData {{ len: {}, encoding: {:?} }}", self.len, self.encoding())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for InnerData {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "InnerData {{ len: {}, encoding: {} }}", self.len, self.encoding())
    }
}

impl InnerData {
    /// The decrypted bytes: data_with_padding (RSA_PAD) or exactly the inner object (legacy).
    pub fn data(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The encoding the client used.
    pub fn encoding(&self) -> InnerEncoding {
        if self.legacy == 1 {
            InnerEncoding::LegacySha1
        } else {
            InnerEncoding::RsaPad
        }
    }
}

/// Decrypts `req_DH_params.encrypted_data` in either encoding a real client sends (INTEROP.md): RSA_PAD, or the
/// legacy `0 ‖ SHA1(data) ‖ data ‖ padding`.
///
/// The legacy layout does not carry the data length, and parsing the secret plaintext to find it would make the
/// work depend on the plaintext (attack B4). So the caller lists every length the inner object can have
/// (`legacy_lengths`, public: for `p_q_inner_data*` that is [`crate::handshake::PQ_INNER_DATA_LENGTHS`]), and the
/// SHA-1 of every candidate prefix is computed and compared in constant time, as is the RSA_PAD check; the results
/// are combined with constant-time selects. The work therefore depends only on `legacy_lengths`, never on the
/// block. Only an accepted decoding may be parsed (for the legacy encoding, the caller then checks that the TL
/// object is exactly [`InnerData::data`]). Every failure is the one [`RsaError::Decrypt`].
pub fn decrypt_inner_data<R: CryptoRng + ?Sized>(
    key: &RsaPrivateKey,
    block: &[u8; RSA_BYTES],
    rng: &mut R,
    legacy_lengths: &[usize],
) -> Result<InnerData, RsaError> {
    let plain = key.decrypt_raw(block, rng)?;
    let (inner, ok) = decode_inner(&plain, legacy_lengths, &mut ());
    if bool::from(ok) {
        Ok(inner)
    } else {
        Err(RsaError::Decrypt)
    }
}

/// The decoding half of [`decrypt_inner_data`], on a raw 256-byte RSA plaintext, without branching on it: returns
/// the selected data (all zero, length 0, when rejected) and whether it was accepted. For the constant-time
/// measurement (`benches/ct.rs`) and tests; not part of the stable API.
#[doc(hidden)]
pub fn decode_inner_plain(plain: &[u8; RSA_BYTES], legacy_lengths: &[usize]) -> (InnerData, Choice) {
    decode_inner(plain, legacy_lengths, &mut ())
}

/// [`decode_inner_plain`] that also counts its hashing and cipher work into `work`. Not part of the stable API.
#[doc(hidden)]
pub fn decode_inner_plain_metered(
    plain: &[u8; RSA_BYTES],
    legacy_lengths: &[usize],
    work: &mut DecodeWork,
) -> (InnerData, Choice) {
    decode_inner(plain, legacy_lengths, work)
}

fn decode_inner<M: DecodeMeter>(
    plain: &[u8; RSA_BYTES],
    legacy_lengths: &[usize],
    meter: &mut M,
) -> (InnerData, Choice) {
    let (pad_data, pad_ok) = rsa_pad_unwrap(plain, meter);

    let (lead, rest) = plain.split_at(1);
    let mut legacy = Zeroizing::new([0u8; 255]);
    legacy.copy_from_slice(rest);
    // Every candidate is hashed, whatever matched before it; the first match's length is kept.
    let mut legacy_hit = Choice::from(0);
    let mut legacy_len = 0u64;
    for &len in legacy_lengths {
        let hit = legacy_check(&legacy, len, meter);
        legacy_len.conditional_assign(&(len as u64), hit & !legacy_hit);
        legacy_hit |= hit;
    }
    let legacy_ok = legacy_hit & lead.ct_eq(&[0u8]) & !pad_ok;
    let ok = pad_ok | legacy_ok;

    let mut out = InnerData {
        buf: [0u8; LEGACY_MAX_DATA],
        len: 0,
        legacy: 0,
    };
    for (i, o) in out.buf.iter_mut().enumerate() {
        let from_pad = pad_data.get(i).copied().unwrap_or(0);
        let from_legacy = legacy.get(20 + i).copied().unwrap_or(0);
        let byte = u8::conditional_select(&from_pad, &from_legacy, legacy_ok);
        *o = u8::conditional_select(&0, &byte, ok);
    }
    let len = u64::conditional_select(&(RSA_PAD_DATA_LEN as u64), &legacy_len, legacy_ok);
    let len = u64::conditional_select(&0, &len, ok);
    // len ≤ LEGACY_MAX_DATA: it is RSA_PAD_DATA_LEN, 0, or a candidate that passed its `≤ LEGACY_MAX_DATA` check.
    out.len = usize::try_from(len).unwrap_or(0);
    out.legacy = legacy_ok.unwrap_u8();
    (out, ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn table_keys_are_valid_and_distinct() {
        for (i, k) in TELEGRAM_KEYS.iter().enumerate() {
            k.validate().unwrap();
            assert_eq!(find_telegram_key(k.fingerprint()), Some(k));
            for other in &TELEGRAM_KEYS[i + 1..] {
                assert_ne!(k.fingerprint(), other.fingerprint());
            }
        }
    }

    #[test]
    fn tl_bytes_padding() {
        // A 3-byte e: 1 header byte + 3 = 4, no padding; a 1-byte value: 1 + 1 + 2 padding.
        let mut a = Sha1::new();
        tl_bytes_into(&mut a, &[1, 0, 1]);
        assert_eq!(a.finalize(), Sha1::digest([3u8, 1, 0, 1]));
        let mut b = Sha1::new();
        tl_bytes_into(&mut b, &[7]);
        assert_eq!(b.finalize(), Sha1::digest([1u8, 7, 0, 0]));
        let mut c = Sha1::new();
        tl_bytes_into(&mut c, &[9u8; 254]);
        let mut want = [0u8; 260];
        want[..4].copy_from_slice(&[0xfe, 254, 0, 0]);
        want[4..258].fill(9);
        assert_eq!(c.finalize(), Sha1::digest(want));
    }
}
