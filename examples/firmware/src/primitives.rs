//! The building blocks, measured one by one (full build only): the 1 KiB message codec with both padding policies,
//! AES-IGE, the two DH modpows, RSA_PAD both ways, pq factoring.

use cortex_m_semihosting::hprintln;

use mtproto_sansio::crypto::aes::{ige_decrypt, ige_encrypt};
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::factor::factor_pq;
use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader, PaddingPolicy};
use mtproto_sansio::crypto::pem::parse_private_pem_with_buf;
use mtproto_sansio::crypto::rsa::{rsa_pad_decrypt, rsa_pad_encrypt};

use crate::meter::measure;
use crate::rng::DemoRng;
use crate::{MSG, Report, WIRE, fail};

/// The test DC's RSA key (a public test fixture of the main crate, never a real secret).
const DC_KEY_PEM: &[u8] = include_bytes!("../../../tests/data/keys/dc_test_pkcs1.pem");

#[inline(never)]
pub fn run(r: &mut Report, wire: &mut [u8; WIRE], rng: &mut DemoRng) {
    // 1 KiB message, MTProto 2.0, client to DC.
    let key = AuthKey::from_bytes(core::array::from_fn(|i| (i * 7 + 3) as u8));
    let header = MessageHeader {
        salt: 1,
        session_id: 2,
        msg_id: 0x6000_0000_0000_0004,
        seq_no: 1,
    };
    let body = |i: usize| (i * 13) as u8;
    for (policy, name) in [(PaddingPolicy::MINIMAL, "minimal"), (PaddingPolicy::DEFAULT, "default")] {
        let m = measure(|| {
            let b: [u8; MSG] = core::array::from_fn(body);
            packet::encrypt_with_policy(&key, Direction::ClientToServer, &header, &b, policy, rng, wire)
        });
        let n = match m.out {
            Ok(e) => e.len,
            Err(_) => fail("encrypt"),
        };
        hprintln!("  {} padding: {} B packet", name, n);
        let e = r.line("MTProto 2.0 encrypt, 1 KiB body", &m);
        let m = measure(
            || match packet::decrypt(&key, Direction::ClientToServer, &mut wire[..n]) {
                Ok(v) => v.msg_id() == header.msg_id && v.body().iter().enumerate().all(|(i, &b)| b == body(i)),
                Err(_) => false,
            },
        );
        let d = r.line("MTProto 2.0 decrypt+verify, 1 KiB body", &m);
        r.check(m.out, "1 KiB message round trip");
        hprintln!("  encrypt+decrypt: {} instructions", e + d);
    }
    let k = [7u8; 32];
    let iv = [9u8; 32];
    let m = measure(|| ige_encrypt(&k, &iv, &mut wire[..MSG]));
    r.line("AES-256-IGE encrypt 1 KiB", &m);
    let m = measure(|| ige_decrypt(&k, &iv, &mut wire[..MSG]));
    r.line("AES-256-IGE decrypt 1 KiB", &m);

    // DH with the full 2048-bit exponent.
    let group = DhGroup::telegram(3).unwrap_or_else(|_| fail("DH group"));
    let m = measure(|| group.gen_keypair(rng));
    r.line("DH g^a mod p (2048-bit exponent)", &m);
    let (secret, public) = m.out.unwrap_or_else(|_| fail("DH keypair"));
    let m = measure(|| group.shared(&secret, &public).is_ok());
    r.line("DH peer^a mod p (2048-bit exponent)", &m);
    r.check(m.out, "DH shared");

    // RSA with the test DC's key, parsed from PEM.
    let m = measure(|| {
        let mut pem_buf = [0u8; 1400];
        parse_private_pem_with_buf(DC_KEY_PEM, &mut pem_buf)
    });
    r.line("RSA private key from PEM (DC setup)", &m);
    let dc_key = m.out.unwrap_or_else(|_| fail("DC key PEM"));
    let data: [u8; 96] = core::array::from_fn(|i| i as u8);
    let m = measure(|| rsa_pad_encrypt(dc_key.public_key(), &data, rng));
    r.line("RSA_PAD encrypt (client, e=65537)", &m);
    let block = m.out.unwrap_or_else(|_| fail("RSA_PAD encrypt"));
    let m = measure(|| rsa_pad_decrypt(&dc_key, &block, rng).is_ok_and(|p| p.get(..96) == Some(&data[..])));
    r.line("RSA_PAD decrypt (DC)", &m);
    r.check(m.out, "RSA_PAD round trip");

    let m = measure(|| factor_pq(0x17ED_4894_1A08_F981));
    r.line("pq factorization (0x17ED48941A08F981)", &m);
    r.check(m.out == Ok((0x494C_553B, 0x5391_1073)), "pq factors");
}
