//! `linux.netDevices`: host network devices moved into a container's
//! network namespace (config-linux.md "netDevices"). Each keeps its
//! permanent addresses of global scope (the kernel drops every address
//! when a device changes namespace, so they are read first and given back
//! inside), may be renamed on the way, and is set up. They are not moved
//! back: when the namespace goes, the kernel returns physical devices to
//! the host and destroys virtual ones, as the spec says it should.

use crate::enter::in_netns;
use crate::rtnl::Rtnl;
use protocol::net::NetDevice;
use protocol::Error;
use std::os::fd::{AsFd, OwnedFd};

/// Moves `devices` into `ns`; returns their names there.
pub fn move_all(ns: &OwnedFd, devices: &[NetDevice]) -> Result<Vec<String>, Error> {
    devices.iter().map(|d| move_one(ns, d)).collect()
}

fn move_one(ns: &OwnedFd, d: &NetDevice) -> Result<String, Error> {
    let at = format!("linux.netDevices.{}", d.host_name);
    let target = d.name.clone().unwrap_or_else(|| d.host_name.clone());
    let mut host = Rtnl::open()?;
    let link = match host.get(&d.host_name) {
        Ok(l) => l,
        Err(e) => {
            // Asked again after the move (a retry): it is in there.
            if !target.contains('%') {
                let name = target.clone();
                let inside = in_netns(dup(ns)?, move || Rtnl::open()?.get(&name));
                if inside.is_ok() {
                    return Ok(target);
                }
            }
            return Err(Error::not_found(format!(
                "{at}: no such network device on the host ({})",
                e.message
            )));
        }
    };
    let addresses = host.permanent_global_addresses(link.index)?;
    host.move_to(link.index, ns.as_fd(), &target)
        .map_err(|e| Error {
            message: format!(
                "{at}: move it into the container's network namespace as {target:?}: {}",
                e.message
            ),
            ..e
        })?;
    let index = link.index;
    in_netns(dup(ns)?, move || {
        let mut r = Rtnl::open()?;
        // It keeps its index unless that one is taken in there.
        let (index, name) = match r.name_of(index) {
            Ok(n) if n == target || target.contains('%') => (index, n),
            _ => (r.get(&target)?.index, target),
        };
        for a in &addresses {
            r.add_address(index, a).map_err(|e| Error {
                message: format!(
                    "{name}: give back its address {:?}: {}",
                    a.attributes, e.message
                ),
                ..e
            })?;
        }
        r.set_up(&name)?;
        Ok(name)
    })
    .map_err(|e| Error {
        message: format!("{at}: {}", e.message),
        ..e
    })
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, Error> {
    fd.try_clone()
        .map_err(|e| Error::io("dup the container's network namespace", &e))
}
