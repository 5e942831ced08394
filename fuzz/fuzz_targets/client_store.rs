#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mtproto_sansio::fuzzing::store::client_store(data));
