#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mtproto_sansio::fuzzing::updates::client_updates_restore(data));
