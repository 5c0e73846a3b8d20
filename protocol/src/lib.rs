//! asterism's wire protocol.
//!
//! Every server speaks the same envelope ([`envelope`]) over SOCK_SEQPACKET,
//! one postcard payload per message. What differs per server is the body:
//! each server has one request enum and one response enum (and one event
//! enum), tied together by a [`Protocol`] marker type so that the client and
//! the server loop in `libipc` are generic over them.
//!
//! Rule for every enum here: variants are only ever appended. postcard encodes
//! the variant index, so reordering or removing a variant changes the bytes on
//! the wire; the golden-bytes tests in `tests/golden.rs` catch that.

pub mod cgroup;
pub mod cpu;
pub mod envelope;
pub mod error;
pub mod id;
pub mod init;
pub mod memory;
pub mod net;
pub mod placeholder;
pub mod seccomp;
pub mod size;
pub mod vfs;

pub use envelope::{
    Call, ClientHello, Hello, Reply, Request, Response, ServerFrame, ServerStatus, MAX_MESSAGE,
    PROTOCOL_VERSION,
};
pub use error::{Error, ErrorKind};
pub use id::{validate_id, ID_MAX_LEN};

use serde::{de::DeserializeOwned, Serialize};

/// Ties a server's name to its request, response and event types.
pub trait Protocol: Send + Sync + 'static {
    /// The server's name: binary name, socket name (`<root>/sockets/<NAME>.sock`).
    const NAME: &'static str;
    type Request: Serialize + DeserializeOwned + Send + std::fmt::Debug + 'static;
    type Response: Serialize + DeserializeOwned + Send + std::fmt::Debug + 'static;
    type Event: Serialize + DeserializeOwned + Send + Clone + std::fmt::Debug + 'static;
}

/// The names of the five resource servers, in start order.
pub const SERVERS: [&str; 5] = [
    memory::Memory::NAME,
    cpu::Cpu::NAME,
    vfs::Vfs::NAME,
    net::Net::NAME,
    seccomp::Seccomp::NAME,
];

/// Encode any wire value with postcard.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(value).map_err(|e| Error::internal(format!("cannot encode message: {e}")))
}

/// Decode a wire value, refusing trailing bytes (a frame must be exactly one message).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("malformed frame ({} bytes): {e}", bytes.len()),
        )
    })?;
    if !rest.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "malformed frame: {} trailing bytes after a {}-byte message",
                rest.len(),
                bytes.len() - rest.len()
            ),
        ));
    }
    Ok(value)
}
