//! PEM and DER for RSA keys, without an allocator: PKCS#1 (`RSA PUBLIC KEY`, `RSA PRIVATE KEY`), SPKI
//! (`PUBLIC KEY`) and PKCS#8 (`PRIVATE KEY`) in, PKCS#1 out (for `--gen-key`).
//!
//! Base64 is decoded into a bounded stack buffer ([`MAX_DER_LEN`], or a caller buffer with the `*_with_buf`
//! variants); the DER reader is a flat, bounds-checked cursor (nested structures are parsed by opening a new cursor
//! on the inner bytes, never by recursion) that accepts only definite, minimal lengths.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zeroize::Zeroizing;

use super::dh::be_bytes;
use super::rsa::{RSA_BYTES, RsaError, RsaPrivateKey, RsaPublicKey};

/// Largest DER body accepted by the stack-buffer entry points (a 2048-bit PKCS#8 private key is about 1.2 KB).
pub const MAX_DER_LEN: usize = 1600;
/// Longest DER length field accepted, in bytes after the 0x8N prefix (lengths up to 65535).
pub const MAX_DER_LENGTH_BYTES: usize = 2;

/// Why a PEM or DER key was refused, or could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PemError {
    /// No `-----BEGIN …-----` line.
    NoBegin,
    /// No matching `-----END …-----` line.
    NoEnd,
    /// The label is not one this parser handles for the requested key type.
    UnsupportedLabel,
    /// Invalid base64 (bad character, bad padding, data after padding).
    Base64,
    /// The decoded body exceeds the buffer ([`MAX_DER_LEN`]).
    TooLong,
    /// Malformed DER: truncated, wrong tag, non-minimal or indefinite length, trailing bytes, negative integer.
    Der,
    /// An algorithm other than rsaEncryption, or a multi-prime private key.
    UnsupportedAlgorithm,
    /// A structurally valid key that fails RSA checks (size, exponent, inconsistent parts).
    Key(RsaError),
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the buffer must have (`usize::MAX`: more than a DER length field can say).
        required: usize,
    },
    /// The private key has no primes, which PKCS#1 requires.
    MissingPrimes,
}

impl core::fmt::Display for PemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PemError::NoBegin => f.write_str("no PEM BEGIN line"),
            PemError::NoEnd => f.write_str("no matching PEM END line"),
            PemError::UnsupportedLabel => f.write_str("unsupported PEM label"),
            PemError::Base64 => f.write_str("invalid base64"),
            PemError::TooLong => f.write_str("PEM body too long"),
            PemError::Der => f.write_str("malformed DER"),
            PemError::UnsupportedAlgorithm => f.write_str("unsupported key algorithm"),
            PemError::Key(e) => write!(f, "invalid RSA key: {e}"),
            PemError::BufferTooSmall { required } => write!(f, "output buffer too small: {required} bytes required"),
            PemError::MissingPrimes => f.write_str("private key lacks p and q"),
        }
    }
}

impl core::error::Error for PemError {}

impl From<RsaError> for PemError {
    fn from(e: RsaError) -> Self {
        PemError::Key(e)
    }
}

/// The PEM labels this module understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PemLabel {
    /// `RSA PUBLIC KEY`: PKCS#1 RSAPublicKey.
    RsaPublicKey,
    /// `PUBLIC KEY`: SubjectPublicKeyInfo.
    PublicKey,
    /// `RSA PRIVATE KEY`: PKCS#1 RSAPrivateKey.
    RsaPrivateKey,
    /// `PRIVATE KEY`: PKCS#8 PrivateKeyInfo.
    PrivateKey,
}

impl PemLabel {
    fn text(self) -> &'static [u8] {
        match self {
            PemLabel::RsaPublicKey => b"RSA PUBLIC KEY",
            PemLabel::PublicKey => b"PUBLIC KEY",
            PemLabel::RsaPrivateKey => b"RSA PRIVATE KEY",
            PemLabel::PrivateKey => b"PRIVATE KEY",
        }
    }

    fn from_text(t: &[u8]) -> Option<Self> {
        [
            PemLabel::RsaPublicKey,
            PemLabel::PublicKey,
            PemLabel::RsaPrivateKey,
            PemLabel::PrivateKey,
        ]
        .into_iter()
        .find(|l| l.text() == t)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Strict base64 decoding into `out`, skipping ASCII whitespace; returns the decoded length.
pub fn base64_decode(input: &[u8], out: &mut [u8]) -> Result<usize, PemError> {
    let mut acc: u32 = 0;
    let mut nbits = 0u32;
    let mut len = 0usize;
    let mut quad = 0usize;
    let mut pad = 0usize;
    for &c in input {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            pad += 1;
            quad += 1;
            if pad > 2 {
                return Err(PemError::Base64);
            }
            continue;
        }
        if pad > 0 {
            return Err(PemError::Base64);
        }
        let v = b64_value(c).ok_or(PemError::Base64)?;
        acc = (acc << 6) | u32::from(v);
        nbits += 6;
        quad += 1;
        if nbits >= 8 {
            nbits -= 8;
            let slot = out.get_mut(len).ok_or(PemError::TooLong)?;
            *slot = (acc >> nbits) as u8;
            len += 1;
            acc &= (1 << nbits) - 1;
        }
    }
    // Whole quads only, padding consistent with the leftover bits, and those bits zero (canonical encoding).
    if !quad.is_multiple_of(4)
        || (pad == 1 && nbits != 2)
        || (pad == 2 && nbits != 4)
        || (pad == 0 && nbits != 0)
        || acc != 0
    {
        return Err(PemError::Base64);
    }
    Ok(len)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends bytes to a bounded output.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn push(&mut self, bytes: &[u8]) -> Result<(), PemError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(PemError::BufferTooSmall { required: usize::MAX })?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(PemError::BufferTooSmall { required: end })?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

fn b64_char(v: u32) -> u8 {
    B64.get((v & 63) as usize).copied().unwrap_or(b'A')
}

/// Writes a PEM block with 64-character lines.
fn write_pem(label: PemLabel, der: &[u8], out: &mut [u8]) -> Result<usize, PemError> {
    let mut o = Out { buf: out, len: 0 };
    o.push(b"-----BEGIN ")?;
    o.push(label.text())?;
    o.push(b"-----\n")?;
    let mut col = 0;
    for chunk in der.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        let mut q = [b64_char(v >> 18), b64_char(v >> 12), b64_char(v >> 6), b64_char(v)];
        if chunk.len() < 3 {
            q[3] = b'=';
        }
        if chunk.len() < 2 {
            q[2] = b'=';
        }
        o.push(&q)?;
        col += 4;
        if col == 64 {
            o.push(b"\n")?;
            col = 0;
        }
    }
    if col != 0 {
        o.push(b"\n")?;
    }
    o.push(b"-----END ")?;
    o.push(label.text())?;
    o.push(b"-----\n")?;
    Ok(o.len)
}

/// Finds the first PEM block, decodes its body into `buf` and returns the label and the DER length.
pub fn decode_pem(pem: &[u8], buf: &mut [u8]) -> Result<(PemLabel, usize), PemError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    let start = find(pem, BEGIN).ok_or(PemError::NoBegin)? + BEGIN.len();
    let after_begin = pem.get(start..).ok_or(PemError::NoBegin)?;
    let label_len = find(after_begin, DASHES).ok_or(PemError::NoBegin)?;
    let label_text = after_begin.get(..label_len).ok_or(PemError::NoBegin)?;
    let label = PemLabel::from_text(label_text).ok_or(PemError::UnsupportedLabel)?;
    let body_and_end = after_begin.get(label_len + DASHES.len()..).ok_or(PemError::NoEnd)?;
    let end_at = find(body_and_end, b"-----END ").ok_or(PemError::NoEnd)?;
    let body = body_and_end.get(..end_at).ok_or(PemError::NoEnd)?;
    let end_line = body_and_end.get(end_at + 9..).ok_or(PemError::NoEnd)?;
    if !end_line.starts_with(label_text) || !end_line.get(label_len..).is_some_and(|r| r.starts_with(DASHES)) {
        return Err(PemError::NoEnd);
    }
    Ok((label, base64_decode(body, buf)?))
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// 1.2.840.113549.1.1.1
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A flat DER cursor.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(data: &'a [u8]) -> Self {
        Der { rest: data }
    }

    /// Reads one element with the given tag and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], PemError> {
        let (&t, after_tag) = self.rest.split_first().ok_or(PemError::Der)?;
        if t != tag {
            return Err(PemError::Der);
        }
        let (&first, mut after) = after_tag.split_first().ok_or(PemError::Der)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > MAX_DER_LENGTH_BYTES {
                return Err(PemError::Der);
            }
            let (digits, tail) = after.split_at_checked(n).ok_or(PemError::Der)?;
            after = tail;
            let len = digits.iter().fold(0usize, |acc, &d| (acc << 8) | usize::from(d));
            // Minimal form: no leading zero byte and no long form for lengths below 128.
            if digits.first() == Some(&0) || len < 0x80 {
                return Err(PemError::Der);
            }
            len
        };
        let (content, tail) = after.split_at_checked(len).ok_or(PemError::Der)?;
        self.rest = tail;
        Ok(content)
    }

    /// Reads a non-negative INTEGER and returns its magnitude without the sign byte.
    fn read_uint(&mut self) -> Result<&'a [u8], PemError> {
        let c = self.read(TAG_INTEGER)?;
        match c {
            [] => Err(PemError::Der),
            [b, ..] if b & 0x80 != 0 => Err(PemError::Der),
            [0, next, ..] if next & 0x80 == 0 => Err(PemError::Der),
            [0, rest @ ..] if !rest.is_empty() => Ok(rest),
            _ => Ok(c),
        }
    }

    fn read_u32(&mut self) -> Result<u32, PemError> {
        let m = self.read_uint()?;
        if m.len() > 4 {
            return Err(PemError::Key(RsaError::Exponent));
        }
        Ok(m.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
    }

    fn done(&self) -> Result<(), PemError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(PemError::Der)
        }
    }
}

/// Reads `SEQUENCE { rsaEncryption, NULL? }`.
fn read_rsa_algorithm(d: &mut Der<'_>) -> Result<(), PemError> {
    let mut alg = Der::new(d.read(TAG_SEQUENCE)?);
    if alg.read(TAG_OID)? != OID_RSA_ENCRYPTION {
        return Err(PemError::UnsupportedAlgorithm);
    }
    if !alg.rest.is_empty() && !alg.read(TAG_NULL)?.is_empty() {
        return Err(PemError::Der);
    }
    alg.done()
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
pub fn parse_pkcs1_public_der(der: &[u8]) -> Result<RsaPublicKey, PemError> {
    let mut outer = Der::new(der);
    let mut seq = Der::new(outer.read(TAG_SEQUENCE)?);
    outer.done()?;
    let n = seq.read_uint()?;
    let e = seq.read_u32()?;
    seq.done()?;
    Ok(RsaPublicKey::from_be_bytes(n, e)?)
}

/// SPKI `SEQUENCE { AlgorithmIdentifier, BIT STRING { RSAPublicKey } }`.
pub fn parse_spki_der(der: &[u8]) -> Result<RsaPublicKey, PemError> {
    let mut outer = Der::new(der);
    let mut seq = Der::new(outer.read(TAG_SEQUENCE)?);
    outer.done()?;
    read_rsa_algorithm(&mut seq)?;
    let bits = seq.read(TAG_BIT_STRING)?;
    seq.done()?;
    match bits.split_first() {
        Some((0, inner)) => parse_pkcs1_public_der(inner),
        _ => Err(PemError::Der),
    }
}

/// PKCS#1 `RSAPrivateKey` (two-prime, version 0). The CRT fields are read for well-formedness and recomputed on
/// export; the key is checked by [`RsaPrivateKey::from_be_parts`].
pub fn parse_pkcs1_private_der(der: &[u8]) -> Result<RsaPrivateKey, PemError> {
    let mut outer = Der::new(der);
    let mut seq = Der::new(outer.read(TAG_SEQUENCE)?);
    outer.done()?;
    if seq.read_uint()? != [0] {
        return Err(PemError::UnsupportedAlgorithm);
    }
    let n = seq.read_uint()?;
    let e = seq.read_u32()?;
    let d = seq.read_uint()?;
    let p = seq.read_uint()?;
    let q = seq.read_uint()?;
    for _ in 0..3 {
        seq.read_uint()?;
    }
    seq.done()?;
    Ok(RsaPrivateKey::from_be_parts(n, e, d, Some((p, q)))?)
}

/// PKCS#8 `PrivateKeyInfo { version, AlgorithmIdentifier, OCTET STRING { RSAPrivateKey }, … }`; optional
/// attributes and public key after the key are skipped.
pub fn parse_pkcs8_der(der: &[u8]) -> Result<RsaPrivateKey, PemError> {
    let mut outer = Der::new(der);
    let mut seq = Der::new(outer.read(TAG_SEQUENCE)?);
    outer.done()?;
    let version = seq.read_uint()?;
    if version != [0] && version != [1] {
        return Err(PemError::UnsupportedAlgorithm);
    }
    read_rsa_algorithm(&mut seq)?;
    parse_pkcs1_private_der(seq.read(TAG_OCTET_STRING)?)
}

/// A public key from a `RSA PUBLIC KEY` or `PUBLIC KEY` PEM block, decoding into `buf`.
pub fn parse_public_pem_with_buf(pem: &[u8], buf: &mut [u8]) -> Result<RsaPublicKey, PemError> {
    let (label, len) = decode_pem(pem, buf)?;
    let der = buf.get(..len).ok_or(PemError::TooLong)?;
    match label {
        PemLabel::RsaPublicKey => parse_pkcs1_public_der(der),
        PemLabel::PublicKey => parse_spki_der(der),
        PemLabel::RsaPrivateKey | PemLabel::PrivateKey => Err(PemError::UnsupportedLabel),
    }
}

/// A public key from PEM (PKCS#1 or SPKI), decoding into a [`MAX_DER_LEN`] stack buffer.
pub fn parse_public_pem(pem: &[u8]) -> Result<RsaPublicKey, PemError> {
    parse_public_pem_with_buf(pem, &mut [0u8; MAX_DER_LEN])
}

/// A private key from a `RSA PRIVATE KEY` or `PRIVATE KEY` PEM block, decoding into `buf` (which then holds secret
/// bytes: the caller should wipe it).
pub fn parse_private_pem_with_buf(pem: &[u8], buf: &mut [u8]) -> Result<RsaPrivateKey, PemError> {
    let (label, len) = decode_pem(pem, buf)?;
    let der = buf.get(..len).ok_or(PemError::TooLong)?;
    match label {
        PemLabel::RsaPrivateKey => parse_pkcs1_private_der(der),
        PemLabel::PrivateKey => parse_pkcs8_der(der),
        PemLabel::RsaPublicKey | PemLabel::PublicKey => Err(PemError::UnsupportedLabel),
    }
}

/// A private key from PEM (PKCS#1 or PKCS#8), decoding into a zeroized [`MAX_DER_LEN`] stack buffer.
pub fn parse_private_pem(pem: &[u8]) -> Result<RsaPrivateKey, PemError> {
    let mut buf = Zeroizing::new([0u8; MAX_DER_LEN]);
    parse_private_pem_with_buf(pem, &mut buf[..])
}

/// Length of a DER element with `content` bytes.
fn tlv_len(content: usize) -> usize {
    1 + content
        + match content {
            0..0x80 => 1,
            0x80..0x100 => 2,
            _ => 3,
        }
}

fn int_content_len(magnitude: &[u8]) -> usize {
    match magnitude.first() {
        None => 1,
        Some(b) if b & 0x80 != 0 => magnitude.len() + 1,
        Some(_) => magnitude.len(),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

fn push_header(o: &mut Out<'_>, tag: u8, len: usize) -> Result<(), PemError> {
    match len {
        0..0x80 => o.push(&[tag, len as u8]),
        0x80..0x100 => o.push(&[tag, 0x81, len as u8]),
        0x100..0x10000 => o.push(&[tag, 0x82, (len >> 8) as u8, len as u8]),
        _ => Err(PemError::BufferTooSmall { required: usize::MAX }),
    }
}

fn push_int(o: &mut Out<'_>, magnitude: &[u8]) -> Result<(), PemError> {
    push_header(o, TAG_INTEGER, int_content_len(magnitude))?;
    match magnitude.first() {
        None => o.push(&[0]),
        Some(b) if b & 0x80 != 0 => {
            o.push(&[0])?;
            o.push(magnitude)
        }
        Some(_) => o.push(magnitude),
    }
}

/// DER `SEQUENCE` of non-negative INTEGERs given as big-endian magnitudes.
fn write_int_sequence(ints: &[&[u8]], out: &mut [u8]) -> Result<usize, PemError> {
    let content: usize = ints.iter().map(|m| tlv_len(int_content_len(trim(m)))).sum();
    let mut o = Out { buf: out, len: 0 };
    push_header(&mut o, TAG_SEQUENCE, content)?;
    for m in ints {
        push_int(&mut o, trim(m))?;
    }
    Ok(o.len)
}

/// PKCS#1 RSAPublicKey DER into `out`; returns its length.
pub fn write_pkcs1_public_der(key: &RsaPublicKey, out: &mut [u8]) -> Result<usize, PemError> {
    write_int_sequence(&[&key.n_bytes(), &key.e().to_be_bytes()], out)
}

/// PKCS#1 RSAPrivateKey DER into `out` (secret bytes: the caller should wipe it); returns its length.
pub fn write_pkcs1_private_der(key: &RsaPrivateKey, out: &mut [u8]) -> Result<usize, PemError> {
    let (p, q) = key.primes_bytes().ok_or(PemError::MissingPrimes)?;
    let [e1, e2, coef] = key.crt_params().ok_or(PemError::MissingPrimes)?;
    let (e1, e2, coef) = (
        Zeroizing::new(be_bytes(&e1)),
        Zeroizing::new(be_bytes(&e2)),
        Zeroizing::new(be_bytes(&coef)),
    );
    let d = key.d_bytes();
    let public = key.public_key();
    // Larger prime first, as OpenSSL writes it; `p` and `q` here are the smaller and larger prime.
    let big_first: [&[u8]; 9] = [
        &[0],
        &public.n_bytes(),
        &public.e().to_be_bytes(),
        &d[..],
        &q[..],
        &p[..],
        &e1[..],
        &e2[..],
        &coef[..],
    ];
    write_int_sequence(&big_first, out)
}

/// A `RSA PUBLIC KEY` PEM block into `out`; returns its length.
pub fn write_public_pem(key: &RsaPublicKey, out: &mut [u8]) -> Result<usize, PemError> {
    let mut der = [0u8; RSA_BYTES + 16];
    let len = write_pkcs1_public_der(key, &mut der)?;
    write_pem(PemLabel::RsaPublicKey, der.get(..len).unwrap_or_default(), out)
}

/// A `RSA PRIVATE KEY` PEM block into `out` (secret: the caller should wipe it); returns its length.
pub fn write_private_pem(key: &RsaPrivateKey, out: &mut [u8]) -> Result<usize, PemError> {
    let mut der = Zeroizing::new([0u8; MAX_DER_LEN]);
    let len = write_pkcs1_private_der(key, &mut der[..])?;
    write_pem(PemLabel::RsaPrivateKey, der.get(..len).unwrap_or_default(), out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn base64_strictness() {
        let mut out = [0u8; 8];
        assert_eq!(base64_decode(b"TWFu", &mut out), Ok(3));
        assert_eq!(&out[..3], b"Man");
        assert_eq!(base64_decode(b"TWE=", &mut out), Ok(2));
        assert_eq!(base64_decode(b"TQ==\n", &mut out), Ok(1));
        assert_eq!(base64_decode(b"TR==", &mut out), Err(PemError::Base64));
        assert_eq!(base64_decode(b"TQ=", &mut out), Err(PemError::Base64));
        assert_eq!(base64_decode(b"TQ==TQ==", &mut out), Err(PemError::Base64));
        assert_eq!(base64_decode(b"T*==", &mut out), Err(PemError::Base64));
        assert_eq!(base64_decode(b"AAAAAAAAAAAA", &mut out), Err(PemError::TooLong));
    }

    #[test]
    fn der_lengths_must_be_minimal() {
        assert_eq!(
            Der::new(&[0x02, 0x81, 0x05, 1, 2, 3, 4, 5]).read(0x02),
            Err(PemError::Der)
        );
        assert_eq!(Der::new(&[0x02, 0x80]).read(0x02), Err(PemError::Der));
        assert_eq!(Der::new(&[0x02, 0x83, 0, 0, 1]).read(0x02), Err(PemError::Der));
        assert_eq!(Der::new(&[0x02, 0x02, 0x00, 0x05]).read_uint(), Err(PemError::Der));
        assert_eq!(Der::new(&[0x02, 0x01, 0x80]).read_uint(), Err(PemError::Der));
        assert_eq!(Der::new(&[0x02, 0x02, 0x00, 0x80]).read_uint(), Ok(&[0x80u8][..]));
        assert_eq!(Der::new(&[0x02, 0x03, 1]).read(0x02), Err(PemError::Der));
        assert_eq!(tlv_len(0x7f), 0x81);
        assert_eq!(tlv_len(0x80), 0x83);
        assert_eq!(tlv_len(0x100), 0x104);
    }
}
