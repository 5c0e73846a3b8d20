//! Running code inside another network namespace.
//!
//! setns(CLONE_NEWNET) moves only the calling thread, and a server is
//! multi-threaded: so a dedicated thread joins the namespace, does the work,
//! and exits. No other thread (and no later request) ever runs in it.

use protocol::Error;
use rustix::thread::LinkNameSpaceType;
use std::os::fd::{AsFd, OwnedFd};

/// Runs `f` on a new thread inside the network namespace `ns`.
pub fn in_netns<T, F>(ns: OwnedFd, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name("netns".into())
        .stack_size(256 << 10)
        .spawn(move || {
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| {
                    Error::kernel(
                        e.raw_os_error(),
                        format!("setns into the container's network namespace: {e}"),
                    )
                })?;
            drop(ns);
            f()
        })
        .map_err(|e| Error::io("spawn the netns thread", &e))?;
    thread
        .join()
        .unwrap_or_else(|_| Err(Error::internal("the netns thread panicked")))
}
