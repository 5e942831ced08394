//! Measured alternatives to the library's 2048-bit modpow (full build only), to show where the client's handshake
//! budget and stack go and what a change in the library would buy. Each result is checked against the library's
//! own `DhGroup` result, so a figure is only printed for a correct computation.
//!
//! - `pow`: crypto-bigint's constant-time fixed-window exponentiation, as the library calls it (16-entry table).
//! - `pow_amm`: the same with Almost Montgomery Multiplication.
//! - small-base ladder: g^x for the small generator g (2..=7) as 2048 Montgomery squarings, each followed by a
//!   constant-time select of r or r·g, where r·g is computed with (g − 1) modular additions instead of a full
//!   Montgomery multiplication; no table, so almost no stack. Constant time in x (the exponent's bit positions are
//!   public, its bits are only used through `Choice` selects).

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{CtSelect, Odd, U2048};

use mtproto_sansio::crypto::dh::DhGroup;

use crate::meter::measure;
use crate::rng::DemoRng;
use crate::{Report, fail};

/// g^x mod p by the small-base ladder (see the module docs).
fn small_base_pow(g: u32, x: &U2048, params: &FixedMontyParams<{ U2048::LIMBS }>) -> U2048 {
    let p = params.modulus().as_nz_ref();
    let mut r = FixedMontyForm::one(params);
    for i in (0..U2048::BITS).rev() {
        r = r.square();
        let m = *r.as_montgomery();
        let mut t = m;
        for _ in 1..g {
            t = t.add_mod(&m, p);
        }
        r = FixedMontyForm::from_montgomery(m.ct_select(&t, x.bit(i)), params);
    }
    r.retrieve()
}

#[inline(never)]
pub fn run(r: &mut Report, rng: &mut DemoRng) {
    let group = DhGroup::telegram(3).unwrap_or_else(|_| fail("DH group"));
    let p = U2048::from_be_slice(&group.prime_bytes());
    let params = FixedMontyParams::new_vartime(Odd::new(p).into_option().unwrap_or_else(|| fail("odd p")));
    let mut xb = [0u8; 256];
    mtproto_sansio::rand_core::Rng::fill_bytes(rng, &mut xb);
    let x = U2048::from_be_slice(&xb);
    let g = FixedMontyForm::new(&U2048::from_u32(3), &params);
    let m = measure(|| g.pow(&x).retrieve());
    r.line("crypto-bigint pow, 3^x (2048-bit x)", &m);
    let want = m.out;
    let m = measure(|| g.pow_amm(&x).retrieve());
    r.line("crypto-bigint pow_amm, 3^x", &m);
    r.check(m.out == want, "pow_amm == pow");
    let m = measure(|| small_base_pow(3, &x, &params));
    r.line("small-base ladder, 3^x (2048 squarings)", &m);
    r.check(m.out == want, "small-base ladder == pow");
    let m = measure(|| g.square());
    r.line("one 2048-bit Montgomery squaring", &m);
    let m = measure(|| g.mul(&g));
    r.line("one 2048-bit Montgomery multiplication", &m);
}
