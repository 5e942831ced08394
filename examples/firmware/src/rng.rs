//! The demo's random number generator.
//!
//! ############################################################################################################
//! # DEMO ONLY — NOT A SOURCE OF SECRETS. The QEMU mps2-an386 board has no hardware RNG, so this generator is  #
//! # AES-256-CTR keyed with a FIXED, PUBLIC seed: every run produces the same "random" nonces, DH exponents    #
//! # and padding, and anyone can recompute them. That determinism is what makes the run reproducible (and    #
//! # the instruction counts stable), and it makes every key it produces worthless. A real device must seed   #
//! # a CSPRNG from its TRNG (e.g. the STM32 RNG peripheral) and never ship a fixed seed.                     #
//! ############################################################################################################

use mtproto_sansio::crypto::aes::AesCtr;
use mtproto_sansio::rand_core::{TryCryptoRng, TryRng};

/// AES-256-CTR keystream as a `CryptoRng`, from a fixed demo seed (see the module docs: not for real use).
pub struct DemoRng(AesCtr);

impl DemoRng {
    /// A generator for one role of the demo; `label` separates the client's stream from the DC's.
    pub fn demo(label: u8) -> Self {
        // The fixed, public demo seed. Never do this on a real device.
        let mut key = *b"mtproto-sansio firmware demo !!!";
        key[31] = label;
        DemoRng(AesCtr::new(&key, &[0u8; 16]))
    }
}

impl TryRng for DemoRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        self.0.apply(dst);
        Ok(())
    }
}

impl TryCryptoRng for DemoRng {}
