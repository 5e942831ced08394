//! Fuzz entry points for `transport`: every decoder on both roles, fed arbitrary bytes in arbitrary pieces, with
//! decoded frames re-encoded and decoded again; and the obfuscated-init parser beside the detector.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use crate::transport::detect::{Detected, detect};
use crate::transport::obfuscated::{INIT_LEN, ObfuscatedCodec, ProxySecret};
use crate::transport::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder, Framing, Role};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[
    ("transport_abridged", transport_abridged),
    ("transport_intermediate", transport_intermediate),
    ("transport_padded", transport_padded),
    ("transport_full", transport_full),
    ("transport_obfuscated_init", transport_obfuscated_init),
];

/// Abridged decoders, client and server role.
pub fn transport_abridged(data: &[u8]) {
    framing_target(Framing::Abridged, data);
}

/// Intermediate decoders, client and server role.
pub fn transport_intermediate(data: &[u8]) {
    framing_target(Framing::Intermediate, data);
}

/// Padded intermediate decoders, client and server role.
pub fn transport_padded(data: &[u8]) {
    framing_target(Framing::PaddedIntermediate, data);
}

/// Full-transport decoders, client and server role.
pub fn transport_full(data: &[u8]) {
    framing_target(Framing::Full, data);
}

/// Fuzz-only deterministic generator (xorshift). Padding bytes are the only randomness the encoders draw here,
/// and nothing secret depends on them.
struct FuzzRng(u64);

impl rand_core::TryRng for FuzzRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FuzzRng {}

const CAP: usize = 512;

fn framing_target(framing: Framing, data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let piece = usize::from(ctl & 0x1f) + 1;
    let max_frame = if ctl & 0x20 != 0 { 64 } else { CAP };
    let marker = ctl & 0x40 != 0;
    for role in [Role::Client, Role::Server] {
        let cfg = DecoderConfig {
            framing,
            role,
            max_frame,
            expect_marker: marker && role == Role::Server,
        };
        let mut dec = FrameDecoder::<CAP>::new(cfg);
        let mut pos = 0usize;
        let mut stalls = 0usize;
        while pos < rest.len() {
            let end = pos.saturating_add(piece).min(rest.len());
            let Some(chunk) = rest.get(pos..end) else { break };
            let Ok(n) = dec.feed(chunk) else {
                assert!(dec.error().is_some());
                break;
            };
            assert!(n <= chunk.len());
            pos += n;
            let max_payload = dec.max_payload();
            match dec.next_frame() {
                Some(frame) => {
                    stalls = 0;
                    check_frame(framing, role, max_payload, frame);
                }
                None => {
                    // Without a frame to drain, the decoder must have taken the whole piece.
                    assert_eq!(n, chunk.len());
                    stalls += 1;
                    assert!(stalls <= rest.len());
                }
            }
        }
    }
}

/// Re-encodes a decoded frame as the peer would have sent it and checks that it decodes to the same frame.
fn check_frame(framing: Framing, role: Role, max_payload: usize, frame: Frame<'_>) {
    let mut out = [0u8; CAP + 32];
    let mut rng = FuzzRng(0x9e37_79b9_7f4a_7c15);
    let (mut enc, peer) = match role {
        Role::Client => (
            Encoder::new(EncoderConfig::server(framing).with_max_padding(0)),
            Role::Client,
        ),
        Role::Server => (
            Encoder::new(EncoderConfig::client(framing).with_max_padding(0)),
            Role::Server,
        ),
    };
    let written = match frame {
        Frame::Packet { data, quick_ack } => {
            assert!(data.len() <= max_payload && !data.is_empty());
            assert!(!quick_ack || role == Role::Server);
            if data.len() % 4 != 0 {
                // Only padded intermediate carries unaligned payloads (packet plus padding).
                assert_eq!(framing, Framing::PaddedIntermediate);
                return;
            }
            enc.encode(data, quick_ack, &mut rng, &mut out)
        }
        Frame::QuickAck(token) => {
            assert!(role == Role::Client && token & 0x8000_0000 != 0 && framing != Framing::Full);
            enc.encode_quick_ack(token, &mut out)
        }
        Frame::TransportError(code) => {
            assert!(role == Role::Client && code < 0);
            enc.encode_error(code, &mut out)
        }
    };
    let Ok(n) = written else {
        panic!("a decoded frame must re-encode");
    };
    let mut dec = FrameDecoder::<CAP>::new(DecoderConfig {
        framing,
        role: peer,
        max_frame: CAP,
        expect_marker: false,
    });
    let again = out.get(..n).map(|bytes| dec.decode(bytes));
    match (again, frame) {
        (Some(Ok((m, Some(f2)))), f) => {
            assert_eq!(m, n);
            assert_eq!(f2, f);
        }
        _ => panic!("re-encoded frame did not decode"),
    }
}

/// The obfuscated init parser (through a server codec fed in pieces) against the detector.
pub fn transport_obfuscated_init(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let secret = match ctl % 3 {
        0 => None,
        1 => ProxySecret::from_bytes(&[0x5a; 16]).ok(),
        _ => ProxySecret::from_bytes(&[
            0xdd, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        ])
        .ok(),
    };
    let verdict = detect(rest, secret.as_ref());
    if let Detected::NeedMore(n) = verdict {
        assert!(n > rest.len() && n <= INIT_LEN);
    }
    let piece = usize::from(ctl >> 2) + 1;
    let mut codec = ObfuscatedCodec::<256>::server(secret, 256);
    let mut pos = 0usize;
    let mut result = Ok(());
    while pos < rest.len() {
        let end = pos.saturating_add(piece).min(rest.len());
        let Some(chunk) = rest.get(pos..end) else { break };
        match codec.feed(chunk) {
            Ok(n) => {
                pos += n;
                if codec.next_frame().is_none() && n < chunk.len() {
                    panic!("stalled without a frame");
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        if codec.framing().is_some() && pos >= INIT_LEN {
            break;
        }
    }
    match verdict {
        Detected::Obfuscated { framing, dc_id } => {
            assert_eq!(codec.framing(), Some(framing));
            assert_eq!(codec.dc_id(), Some(dc_id));
        }
        Detected::Rejected(e) => assert_eq!(result, Err(e)),
        _ => {}
    }
}
