//! What the crate's errors have in common: whose fault each one is ([`Fault`], as rustls sorts its errors), and the
//! one way every call says its output buffer is too small ([`BufferTooSmall`]: a struct where the call has no other
//! error, a `BufferTooSmall { required }` variant where it has).
//!
//! A host decides by the fault: a [`Fault::Peer`] error ends that peer's connection (and, on a DC, is worth counting
//! per address: it is what a prober or a forger causes); a [`Fault::Host`] error is a bug or a misconfiguration in
//! the program using the crate, never caused by the network, so it is worth a loud log and no retry with the same
//! arguments; a [`Fault::Environment`] error is neither's doing (a resource ran out, a timer fired, the other side
//! went away): retry later or reconnect.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

/// Whose fault an error is; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fault {
    /// The peer (or whoever forged its bytes) broke the protocol.
    Peer,
    /// The host or the caller broke the API's contract or configured the crate wrongly.
    Host,
    /// Nobody broke a rule: a limit was reached, a timer fired, the connection or session went away.
    Environment,
}

/// An output buffer is too small for the call; nothing was written and no state changed. A host error: size the
/// buffer as the call's docs say (`required` is enough for this call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// Bytes the buffer must have.
    pub required: usize,
}

impl BufferTooSmall {
    /// Always [`Fault::Host`].
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output buffer too small: {} bytes required", self.required)
    }
}

impl core::error::Error for BufferTooSmall {}

#[cfg(test)]
mod tests {
    use super::Fault;
    use crate::handshake::HandshakeError;
    use crate::session::{Dropped, SendError};
    use crate::transport::{EncodeError, TransportError};

    /// The classes a host acts on: what the network can cause is never the host's, and what only a caller can
    /// cause is never the peer's.
    #[test]
    fn faults_sort_errors_by_who_erred() {
        assert_eq!(TransportError::BadCrc.fault(), Fault::Peer);
        assert_eq!(Dropped::Rejected.fault(), Fault::Peer);
        assert_eq!(Dropped::BadMsgId.fault(), Fault::Peer);
        assert_eq!(Dropped::Backpressure.fault(), Fault::Host);
        assert_eq!(SendError::QueueFull.fault(), Fault::Environment);
        assert_eq!(SendError::NotReady.fault(), Fault::Host);
        assert_eq!(EncodeError::BufferTooSmall { required: 9 }.fault(), Fault::Host);
        assert_eq!(HandshakeError::AnswerHash.fault(), Fault::Peer);
        assert_eq!(HandshakeError::WeakRandomness.fault(), Fault::Host);
        assert_eq!(HandshakeError::Timeout.fault(), Fault::Environment);
        assert_eq!(
            crate::session::Error::Transport(TransportError::BadTag).fault(),
            Fault::Peer
        );
        assert_eq!(crate::session::Error::Closed.fault(), Fault::Host);
        assert_eq!(super::BufferTooSmall { required: 1 }.fault(), Fault::Host);
    }
}
