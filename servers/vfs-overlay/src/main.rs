//! vfs-overlay: not built yet. It runs as its own process so that init supervises
//! the whole constellation from the start, answers hello, ping and status,
//! and refuses every other request with a clear "unsupported" error.

use protocol::placeholder::VfsOverlay;
use protocol::Protocol;

fn main() -> std::process::ExitCode {
    libipc::server::run_main::<VfsOverlay, _>(VfsOverlay::NAME, |_, _| {
        Ok(libipc::server::Unbuilt::default())
    })
}
