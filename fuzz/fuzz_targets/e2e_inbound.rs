#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mtproto_sansio::fuzzing::e2e::e2e_inbound(data));
