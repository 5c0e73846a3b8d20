//! The typed error every response can carry.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of failure: lets a client decide to retry (`Unavailable`), to
/// report a user mistake (`InvalidArgument`), and so on. Append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    /// The server is not there right now (restarting); retry later.
    Unavailable,
    /// The request's deadline passed before it was done.
    Timeout,
    /// The kernel refused; the errno is in `Error::errno`.
    Kernel,
    Internal,
    /// The feature is not built yet, or not possible on this host.
    Unsupported,
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// The request is valid but the resource is in the wrong state for it
    /// (delete while processes remain, a limit below current usage).
    Conflict,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Kernel => "kernel error",
            ErrorKind::Internal => "internal error",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::VersionMismatch => "protocol version mismatch",
            ErrorKind::Conflict => "conflict",
        }
    }
}

/// An error that crosses the wire: a kind, the errno when the kernel said no,
/// and a message a person can act on (what was wrong and where).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    pub kind: ErrorKind,
    pub errno: Option<i32>,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            errno: None,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// A kernel error with its errno and what we were doing.
    pub fn kernel(errno: i32, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Kernel,
            errno: Some(errno),
            message: message.into(),
        }
    }
    /// From an `std::io::Error`, keeping the errno, prefixed with context.
    pub fn io(context: impl fmt::Display, err: &std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            _ => ErrorKind::Kernel,
        };
        Error {
            kind,
            errno: err.raw_os_error(),
            message: format!("{context}: {err}"),
        }
    }
    /// True when a client should retry the same request later.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}
