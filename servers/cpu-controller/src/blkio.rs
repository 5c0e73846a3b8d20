//! `linux.resources.blockIO`: weights and per-device throttles, on the
//! cgroup v1 blkio controller or the v2 io controller. Every group has its
//! directory there (as runc's do), blockIO or not: its block I/O is
//! accounted to it, not to its creator's group, and an update can give it
//! blockIO later.

use crate::layout::{Ctl, Layout};
use cgroupfs::CgroupDir;
use protocol::cpu::{BlockIo, DeviceRate};
use protocol::Error;

/// Refuses what cannot be applied here, before anything is made.
pub fn check(layout: &Layout, b: Option<&BlockIo>) -> Result<(), Error> {
    let Some(b) = b else { return Ok(()) };
    if layout.mount_of(Ctl::Blkio).is_none() {
        return Err(Error::unsupported(
            "linux.resources.blockIO: this host has neither a cgroup v1 blkio hierarchy nor the cgroup v2 io controller",
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

/// The settings after an update: `new`'s weights where it gives them, and
/// its per-device entries in place of `old`'s for the same device.
pub fn merge(old: Option<&BlockIo>, new: &BlockIo) -> BlockIo {
    let Some(old) = old else { return new.clone() };
    fn by_device<T: Clone>(old: &[T], new: &[T], dev: impl Fn(&T) -> (i64, i64)) -> Vec<T> {
        let mut out: Vec<T> = old
            .iter()
            .filter(|o| !new.iter().any(|n| dev(n) == dev(o)))
            .cloned()
            .collect();
        out.extend(new.iter().cloned());
        out
    }
    let rate = |d: &DeviceRate| (d.major, d.minor);
    BlockIo {
        weight: new.weight.or(old.weight),
        leaf_weight: new.leaf_weight.or(old.leaf_weight),
        weight_device: by_device(&old.weight_device, &new.weight_device, |d| {
            (d.major, d.minor)
        }),
        throttle_read_bps: by_device(&old.throttle_read_bps, &new.throttle_read_bps, rate),
        throttle_write_bps: by_device(&old.throttle_write_bps, &new.throttle_write_bps, rate),
        throttle_read_iops: by_device(&old.throttle_read_iops, &new.throttle_read_iops, rate),
        throttle_write_iops: by_device(&old.throttle_write_iops, &new.throttle_write_iops, rate),
    }
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

/// cgroup v2: io.max (one line a device, every limit of that device in
/// it), and the weights in io.bfq.weight under BFQ (the same 10..1000 as
/// v1), else in io.weight (1..10000, converted as runc and crun do).
pub fn apply_v2(dir: &CgroupDir, b: &BlockIo) -> Result<(), Error> {
    if b.leaf_weight.is_some() || b.weight_device.iter().any(|d| d.leaf_weight.is_some()) {
        return Err(Error::unsupported(
            "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights",
        ));
    }
    let bfq = dir.has_file("io.bfq.weight");
    let file = if bfq { "io.bfq.weight" } else { "io.weight" };
    let value = |w: u16| match bfq {
        true => w.to_string(),
        false => io_weight(w).to_string(),
    };
    if let Some(w) = b.weight {
        dir.write(file, &format!("default {}", value(w)))?;
    }
    for d in &b.weight_device {
        if let Some(w) = d.weight {
            dir.write(file, &format!("{}:{} {}", d.major, d.minor, value(w)))?;
        }
    }
    let mut devices: Vec<(i64, i64)> = rates(b)
        .iter()
        .flat_map(|(_, l)| l.iter().map(|d| (d.major, d.minor)))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    for (major, minor) in devices {
        let mut line = format!("{major}:{minor}");
        for (name, list) in rates(b) {
            if let Some(d) = list.iter().find(|d| (d.major, d.minor) == (major, minor)) {
                line.push_str(&format!(" {}={}", io_max_key(name), d.rate));
            }
        }
        dir.write("io.max", &line)?;
    }
    Ok(())
}

fn io_max_key(name: &str) -> &'static str {
    match name {
        "throttleReadBpsDevice" => "rbps",
        "throttleWriteBpsDevice" => "wbps",
        "throttleReadIOPSDevice" => "riops",
        _ => "wiops",
    }
}

/// A v1 weight (10..1000) as a v2 io.weight (1..10000).
pub fn io_weight(w: u16) -> u32 {
    1 + (u32::from(w).saturating_sub(10)) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_convert_as_runc_does() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(1000), 10000);
        assert_eq!(io_weight(500), 4950);
    }
}
