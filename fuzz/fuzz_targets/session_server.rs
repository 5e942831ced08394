#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mtproto_sansio::fuzzing::session::session_server(data));
