//! `ipc vfs-overlay VERB`: the vfs-overlay's verbs.
//!
//! `prepare` checks a bundle's rootfs (and with --readonly binds it
//! read-only) and prints the path to use as the container root; `release`
//! undoes it; `list` shows what is prepared. Any other verb is sent as is
//! and answered "unsupported" (images and overlays are not built yet).

use clap::Subcommand;
use libipc::client::new_key;
use protocol::vfs::{Vfs, VfsRequest, VfsResponse, VfsRootfs};
use protocol::Protocol;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum VfsCmd {
    /// Round trip to the server.
    Ping,
    /// Check a bundle's rootfs and print the host path to use as the
    /// container's root (with --readonly: a read-only bind of it at
    /// <root>/containers/ID/rootfs).
    Prepare {
        /// Container id: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
        id: String,
        /// The bundle directory.
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
        /// The config's root.path: relative to the bundle (and staying
        /// inside it), or absolute.
        #[arg(long, default_value = "rootfs")]
        root_path: String,
        /// The config's root.readonly.
        #[arg(long)]
        readonly: bool,
    },
    /// Undo prepare: unmount the read-only bind and remove its mount point.
    Release { id: String },
    /// Every prepared rootfs.
    List {
        /// One JSON object: {"rootfs": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Any other verb: answered "unsupported" until it is built.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

pub fn run(root: &Path, cmd: VfsCmd) -> anyhow::Result<()> {
    match cmd {
        VfsCmd::Ping => super::ping::<Vfs>(root),
        VfsCmd::Prepare {
            id,
            bundle,
            root_path,
            readonly,
        } => {
            let bundle = std::path::absolute(&bundle)
                .map_err(|e| anyhow::anyhow!("bundle {}: {e}", bundle.display()))?;
            let req = VfsRequest::Prepare {
                id: id.clone(),
                bundle: bundle.to_string_lossy().into_owned(),
                root_path,
                readonly,
            };
            match mutate(root, "prepare", &id, req)? {
                VfsResponse::Prepared { rootfs } => println!("{rootfs}"),
                other => anyhow::bail!("{} answered prepare with {other:?}", Vfs::NAME),
            }
            Ok(())
        }
        VfsCmd::Release { id } => {
            mutate(root, "release", &id, VfsRequest::Release { id: id.clone() })?;
            println!("released the rootfs of container {id}");
            Ok(())
        }
        VfsCmd::List { json } => list(root, json),
        VfsCmd::Other(words) => {
            let (name, args) = words
                .split_first()
                .map(|(n, a)| (n.clone(), a.to_vec()))
                .unwrap_or_default();
            let resp = call(root, VfsRequest::Verb { name, args })?;
            anyhow::bail!("{} answered an unbuilt verb with {resp:?}", Vfs::NAME)
        }
    }
}

/// A mutating call under a fresh idempotency key (kept across the client's retries).
fn mutate(root: &Path, op: &str, id: &str, req: VfsRequest) -> anyhow::Result<VfsResponse> {
    let mut c = super::client::<Vfs>(root)?;
    Ok(c.call(req, Some(new_key(op, id)))?)
}

fn call(root: &Path, req: VfsRequest) -> anyhow::Result<VfsResponse> {
    Ok(super::client::<Vfs>(root)?.call(req, None)?)
}

fn list(root: &Path, json: bool) -> anyhow::Result<()> {
    let VfsResponse::List(all) = call(root, VfsRequest::List)? else {
        anyhow::bail!("{} answered list with something else", Vfs::NAME);
    };
    if json {
        let all: Vec<Value> = all.iter().map(rootfs_json).collect();
        println!("{}", json!({ "rootfs": all }));
        return Ok(());
    }
    println!(
        "{:<24} {:<8} {:<7} {:<7} ROOTFS",
        "ID", "READONLY", "MOUNTED", "ADOPTED"
    );
    for r in &all {
        println!(
            "{:<24} {:<8} {:<7} {:<7} {}",
            r.id, r.readonly, r.mounted, r.adopted, r.rootfs
        );
    }
    Ok(())
}

fn rootfs_json(r: &VfsRootfs) -> Value {
    json!({
        "id": r.id,
        "bundle": r.bundle,
        "root_path": r.root_path,
        "readonly": r.readonly,
        "source": r.source,
        "rootfs": r.rootfs,
        "mounted": r.mounted,
        "adopted": r.adopted,
    })
}
