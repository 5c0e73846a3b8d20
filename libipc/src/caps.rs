//! Each server keeps only the Linux capabilities its work needs
//! (DESIGN.md, "Capabilities and trust"). init starts the servers as root
//! with every capability; a server drops the others at its very start,
//! while it has one thread (capabilities are per thread, and the threads
//! it starts later inherit the reduced sets). The bounding set goes too,
//! so that a program it runs (netstack's `nft`) gets no more than it kept.

pub use caps::Capability;
use caps::{CapSet, CapsHashSet};
use protocol::Error;

/// Drops every capability but `keep` from the bounding, inheritable,
/// ambient, permitted and effective sets of the calling thread. A caller
/// that holds fewer than `keep` (not root) keeps what it has.
pub fn keep_only(server: &str, keep: &[Capability]) -> Result<(), Error> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    let fail = |what: &str, e: caps::errors::CapsError| {
        Error::internal(format!("{server}: drop capabilities ({what}): {e}"))
    };
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| fail("read", e))?;
    // Dropping from the bounding set needs CAP_SETPCAP, so it goes first.
    if permitted.contains(&Capability::CAP_SETPCAP) {
        let bounding = caps::read(None, CapSet::Bounding).map_err(|e| fail("read", e))?;
        for c in bounding.difference(&keep) {
            caps::drop(None, CapSet::Bounding, *c).map_err(|e| fail("bounding", e))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| fail("ambient", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| fail("inheritable", e))?;
    let kept: CapsHashSet = permitted.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|e| fail("effective", e))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| fail("permitted", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a thread of its own (capabilities are per thread): only the
    /// kept ones are left in every set, and they still work.
    #[test]
    fn only_the_kept_capabilities_are_left() {
        std::thread::spawn(|| {
            keep_only("test", &[Capability::CAP_KILL, Capability::CAP_CHOWN]).unwrap();
            let want: CapsHashSet = [Capability::CAP_KILL, Capability::CAP_CHOWN].into();
            let have = |set| caps::read(None, set).unwrap();
            if have(CapSet::Permitted).is_empty() {
                return; // not root: nothing to drop
            }
            assert_eq!(have(CapSet::Permitted), want);
            assert_eq!(have(CapSet::Effective), want);
            assert_eq!(have(CapSet::Bounding), want);
            assert!(have(CapSet::Inheritable).is_empty());
            // CAP_SYS_ADMIN is gone: a mount namespace is refused.
            assert_eq!(
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS),
                Err(nix::errno::Errno::EPERM)
            );
        })
        .join()
        .unwrap();
    }
}
