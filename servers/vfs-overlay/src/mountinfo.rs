//! The kernel's mount table, from /proc/self/mountinfo (proc(5)): the truth
//! about which rootfs binds exist, whatever the journal says.

use protocol::Error;
use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// The directory of the filesystem that forms the root of this mount.
    pub root: String,
    pub mount_point: PathBuf,
    /// Per-mount options (`ro`, `nosuid`, ...).
    pub options: String,
    /// Optional fields: `shared:N`, `master:N`, ...; none = private.
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
}

impl MountEntry {
    pub fn readonly(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }

    /// Private: no `shared:` peer group, no `master:` (not a slave either).
    pub fn private(&self) -> bool {
        !self
            .optional
            .iter()
            .any(|o| o.starts_with("shared:") || o.starts_with("master:"))
    }
}

/// Reads this process's mount table (the host's: vfs-overlay never unshares).
pub fn read() -> Result<Vec<MountEntry>, Error> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", &e))?;
    Ok(parse(&text))
}

/// Parses mountinfo text; lines that do not parse are skipped (the kernel
/// writes them, so that means a format we do not know, not an attack).
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let mount_id = l.next()?.parse().ok()?;
    let parent_id = l.next()?.parse().ok()?;
    let _major_minor = l.next()?;
    let root = unescape(l.next()?);
    let mount_point = PathBuf::from(unescape(l.next()?));
    let options = l.next()?.to_string();
    let optional = l.map(str::to_string).collect();
    let mut r = right.split(' ');
    let fstype = r.next()?.to_string();
    let source = unescape(r.next().unwrap_or(""));
    Some(MountEntry {
        mount_id,
        parent_id,
        root,
        mount_point,
        options,
        optional,
        fstype,
        source,
    })
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount on top at `path` (the last one listed there), if any.
pub fn at<'a>(mounts: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    mounts.iter().rev().find(|m| m.mount_point == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
301 27 254:0 /tmp/b/rootfs /run/asterism/containers/c1/rootfs ro,nosuid,relatime - ext4 /dev/vda rw
302 27 254:0 /tmp/my\\040dir /run/a\\040b/x ro master:3 - ext4 /dev/vda rw
303 301 254:0 /tmp/b/rootfs /run/asterism/containers/c1/rootfs rw,relatime - ext4 /dev/vda rw
garbage line
";

    #[test]
    fn parses_the_fields_and_unescapes_paths() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[2].root, "/tmp/b/rootfs");
        assert_eq!(
            m[2].mount_point,
            PathBuf::from("/run/asterism/containers/c1/rootfs")
        );
        assert!(m[2].readonly() && m[2].private());
        assert!(!m[1].private(), "shared:5 is not private");
        assert_eq!(m[3].root, "/tmp/my dir");
        assert_eq!(m[3].mount_point, PathBuf::from("/run/a b/x"));
        assert!(!m[3].private(), "a slave is not private");
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].source, "/dev/vda");
    }

    #[test]
    fn the_top_mount_wins() {
        let m = parse(SAMPLE);
        let top = at(&m, Path::new("/run/asterism/containers/c1/rootfs")).unwrap();
        assert_eq!(top.mount_id, 303);
        assert!(at(&m, Path::new("/run/asterism/containers/c2/rootfs")).is_none());
    }

    #[test]
    fn unescape_leaves_other_backslashes() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("a\\9zz"), "a\\9zz");
        assert_eq!(unescape("end\\04"), "end\\04");
    }

    #[test]
    fn reads_this_process_table() {
        let m = read().unwrap();
        assert!(m.iter().any(|e| e.mount_point == Path::new("/")));
    }
}
