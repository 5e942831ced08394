#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mtproto_sansio::fuzzing::files::client_files(data));
