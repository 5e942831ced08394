//! Links the library into a binary with no std and no allocator, and exercises it so nothing is optimised away.
//! It also compiles the default-build check of item 77: no test fixture is exported without the `testing` feature.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;
use mtproto_sansio::crypto::aes;

#[path = "../../tests/default_build/chk_077_default_build_has_no_test_fixtures.rs"]
mod chk_077_default_build_has_no_test_fixtures;

// crt1 / __libc_start_main and memcpy/memset come from libc; no Rust std is linked.
#[link(name = "c")]
unsafe extern "C" {}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {}
}

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    if chk_077_default_build_has_no_test_fixtures::check() != 0 {
        return 3;
    }
    let key = black_box([3u8; 32]);
    let iv = black_box([5u8; 32]);
    let mut buf = black_box([0u8; 64]);
    if aes::ige_encrypt(&key, &iv, &mut buf).is_err() || aes::ige_decrypt(&key, &iv, &mut buf).is_err() {
        return 1;
    }
    if buf != [0u8; 64] {
        return 2;
    }
    let mut ctr = aes::AesCtr::new(&key, &[0; 16]);
    ctr.apply(&mut buf);
    black_box(&buf);
    0
}
