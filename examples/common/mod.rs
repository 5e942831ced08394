//! Host glue shared by the examples (and by the tests that drive them): the transport codec of one TCP connection
//! ([`link`]), the small api.tl subset the test DC serves ([`api`]), the test DC itself ([`dc`]), the blocking
//! client connection ([`client`]), a secret-chat user over it ([`secret`]) and the HTTP/WebSocket/fake-TLS
//! carriages on a socket ([`carriage_conn`]). Each example uses part of it.
#![allow(dead_code)]

pub mod api;
pub mod carriage_conn;
pub mod client;
pub mod dc;
pub mod link;
pub mod secret;
