//! The vfs-overlay binary: started by init with
//! `--root DIR --epoch N --listen-fd N`.
//!
//! It mounts in the mount namespace it was started in, which is init's (the
//! host's): a read-only rootfs bind must be visible to the launcher, which
//! clones the container's mount namespace from the host's. So this process
//! never unshares anything.

use libipc::server::run_main;
use protocol::vfs::Vfs;
use protocol::Protocol;
use vfs_overlay::VfsService;

fn main() -> std::process::ExitCode {
    run_main::<Vfs, _>(Vfs::NAME, vfs_overlay::CAPABILITIES, |opts, _events| {
        VfsService::start(&opts.state_dir(), &opts.root)
    })
}
