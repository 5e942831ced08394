//! Crate-private logging shim: `trace!`/`debug!`/`warn!` go to `log`, to `defmt`, or nowhere.
//!
//! Format strings must be literals (defmt cannot take `concat!`). Never log keys, nonces or plaintext.
#![allow(unused_macros)]

macro_rules! mt_log {
    ($level:ident, $($arg:expr),+ $(,)?) => {{
        // `log` and `defmt` may both be on (e.g. `--all-features`); defmt wins, so nothing is logged twice.
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        { ::log::$level!($($arg),+); }
        #[cfg(feature = "defmt")]
        { ::defmt::$level!($($arg),+); }
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = ($(&$arg),+); }
    }};
}

macro_rules! trace {
    ($($arg:expr),+ $(,)?) => { mt_log!(trace, $($arg),+) };
}
macro_rules! debug {
    ($($arg:expr),+ $(,)?) => { mt_log!(debug, $($arg),+) };
}
macro_rules! warn {
    ($($arg:expr),+ $(,)?) => { mt_log!(warn, $($arg),+) };
}
