//! `linux.resources.blockIO` on the cgroup v1 blkio controller: weights and
//! per-device throttles. Only a container whose config has blockIO gets a
//! group in the blkio hierarchy (see [`crate::layout::Mount::optional`]):
//! the others do not pay for its mkdir, join and rmdir. On cgroup v2 (the
//! io controller) it is not built yet, and refused as such.

use crate::layout::{Ctl, Layout};
use cgroupfs::CgroupDir;
use protocol::cpu::{BlockIo, DeviceRate};
use protocol::Error;

/// Refuses what cannot be applied here, before anything is made.
pub fn check(layout: &Layout, b: Option<&BlockIo>) -> Result<(), Error> {
    let Some(b) = b else { return Ok(()) };
    if layout.mount_of(Ctl::Blkio).is_none() {
        return Err(Error::unsupported(
            "linux.resources.blockIO: this host has no cgroup v1 blkio hierarchy, and the cgroup v2 io controller is not supported yet",
        ));
    }
    let weight = |what: &str, w: Option<u16>| match w {
        Some(w) if !(10..=1000).contains(&w) => Err(Error::invalid(format!(
            "linux.resources.blockIO.{what}: {w} is not a weight from 10 to 1000"
        ))),
        _ => Ok(()),
    };
    weight("weight", b.weight)?;
    weight("leafWeight", b.leaf_weight)?;
    for (i, d) in b.weight_device.iter().enumerate() {
        device(&format!("weightDevice[{i}]"), d.major, d.minor)?;
        weight(&format!("weightDevice[{i}].weight"), d.weight)?;
        weight(&format!("weightDevice[{i}].leafWeight"), d.leaf_weight)?;
    }
    for (name, list) in rates(b) {
        for (i, d) in list.iter().enumerate() {
            device(&format!("{name}[{i}]"), d.major, d.minor)?;
        }
    }
    Ok(())
}

fn device(at: &str, major: i64, minor: i64) -> Result<(), Error> {
    if major < 0 || minor < 0 {
        return Err(Error::invalid(format!(
            "linux.resources.blockIO.{at}: device {major}:{minor} has a negative number"
        )));
    }
    Ok(())
}

fn rates(b: &BlockIo) -> [(&'static str, &Vec<DeviceRate>); 4] {
    [
        ("throttleReadBpsDevice", &b.throttle_read_bps),
        ("throttleWriteBpsDevice", &b.throttle_write_bps),
        ("throttleReadIOPSDevice", &b.throttle_read_iops),
        ("throttleWriteIOPSDevice", &b.throttle_write_iops),
    ]
}

/// The v1 file of a rate list.
fn rate_file(name: &str) -> &'static str {
    match name {
        "throttleReadBpsDevice" => "blkio.throttle.read_bps_device",
        "throttleWriteBpsDevice" => "blkio.throttle.write_bps_device",
        "throttleReadIOPSDevice" => "blkio.throttle.read_iops_device",
        _ => "blkio.throttle.write_iops_device",
    }
}

/// The weight file this kernel has: CFQ's blkio.weight, or BFQ's
/// blkio.bfq.weight; none under schedulers without proportional shares.
fn weight_file(dir: &CgroupDir, name: &str, what: &str) -> Result<String, Error> {
    for f in [format!("blkio.{name}"), format!("blkio.bfq.{name}")] {
        if dir.has_file(&f) {
            return Ok(f);
        }
    }
    Err(Error::unsupported(format!(
        "linux.resources.blockIO.{what}: this kernel's block I/O schedulers give no proportional weights here (no blkio.{name} or blkio.bfq.{name} in {})",
        dir.path().display()
    )))
}

/// Writes the settings to the group's blkio directory.
pub fn apply(dir: &CgroupDir, b: &BlockIo) -> Result<(), Error> {
    if let Some(w) = b.weight {
        dir.write(&weight_file(dir, "weight", "weight")?, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight {
        dir.write(
            &weight_file(dir, "leaf_weight", "leafWeight")?,
            &w.to_string(),
        )?;
    }
    for d in &b.weight_device {
        if let Some(w) = d.weight {
            let f = weight_file(dir, "weight_device", "weightDevice")?;
            dir.write(&f, &format!("{}:{} {w}", d.major, d.minor))?;
        }
        if let Some(w) = d.leaf_weight {
            let f = weight_file(dir, "leaf_weight_device", "weightDevice.leafWeight")?;
            dir.write(&f, &format!("{}:{} {w}", d.major, d.minor))?;
        }
    }
    for (name, list) in rates(b) {
        let lines: Vec<String> = list
            .iter()
            .map(|d| format!("{}:{} {}", d.major, d.minor, d.rate))
            .collect();
        dir.write_each(rate_file(name), &lines)?;
    }
    Ok(())
}
