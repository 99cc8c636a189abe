//! Transports: the first and last step of every request. They frame bytes into messages for a
//! session actor and write what it sends back; they hold no protocol state.

pub mod http;
pub mod stdio;
