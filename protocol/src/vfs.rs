//! vfs-overlay: container root filesystems. For now: the bundle rootfs
//! check and `root.readonly` (a read-only bind mount); the image store and
//! overlay composition come with their own issue.

use crate::Protocol;
use serde::{Deserialize, Serialize};

pub struct Vfs;
impl Protocol for Vfs {
    const NAME: &'static str = "vfs-overlay";
    type Request = VfsRequest;
    type Response = VfsResponse;
    type Event = VfsEvent;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VfsRequest {
    /// Any verb not built yet, by name; answered with `Unsupported`. It is
    /// variant 0 on purpose: it encodes exactly like
    /// `placeholder::PendingRequest::Verb`, so a client built before this
    /// enum existed still gets a clear "unsupported" answer.
    Verb {
        name: String,
        args: Vec<String>,
    },
    /// Checks the bundle's rootfs and returns the host path the launcher
    /// uses as the container root. `root_path` is the config's `root.path`:
    /// relative to `bundle` (and then it must stay inside the bundle, even
    /// through symlinks), or absolute (anywhere on the host). `readonly` is
    /// `root.readonly`: the rootfs is bind-mounted read-only at
    /// `<root>/containers/<id>/rootfs` and that path is returned.
    /// Idempotent per id: the same arguments give the same answer.
    Prepare {
        id: String,
        /// Absolute path of the bundle directory.
        bundle: String,
        root_path: String,
        readonly: bool,
    },
    /// Undoes `Prepare` (unmounts the read-only bind, removes its mount point).
    Release {
        id: String,
    },
    List,
}

/// A prepared rootfs, as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfsRootfs {
    pub id: String,
    /// The bundle and root.path it was prepared from (empty when adopted
    /// from mountinfo without a journal entry).
    pub bundle: String,
    pub root_path: String,
    pub readonly: bool,
    /// The bundle rootfs, symlinks resolved (empty when adopted).
    pub source: String,
    /// The path handed to the launcher.
    pub rootfs: String,
    /// Whether the read-only bind is in the host's mount table right now
    /// (always false for a writable rootfs, which needs no mount).
    pub mounted: bool,
    /// Found in mountinfo without a journal entry and taken over.
    pub adopted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VfsResponse {
    Prepared { rootfs: String },
    Released,
    List(Vec<VfsRootfs>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VfsEvent {}
