//! process.terminal with --console-socket, as runc does it: after
//! pivot_root the container process opens a pty from the container's own
//! devpts (/dev/ptmx -> pts/ptmx), binds the pty on /dev/console, sends the
//! master over the console socket (SCM_RIGHTS, payload "/dev/ptmx" as
//! runc's), and makes the pty its stdio and controlling terminal.

use anyhow::{Context, Result};
use rustix::fs::{Mode, OFlags};
use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pty::OpenptFlags;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// The terminal size from process.consoleSize.
pub type Size = Option<(u16, u16)>;

/// Creates the pty and hands its master to the console socket. With
/// `mount_console` (create, not exec) the pty is also bound on /dev/console.
pub fn setup(socket: BorrowedFd<'_>, size: Size, mount_console: bool) -> Result<()> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).context("open /dev/ptmx")?;
    rustix::io::fcntl_setfd(&master, rustix::io::FdFlags::CLOEXEC)?;
    rustix::pty::unlockpt(&master).context("unlockpt")?;
    let name = rustix::pty::ptsname(&master, Vec::new()).context("ptsname")?;
    let name = std::path::PathBuf::from(name.to_string_lossy().into_owned());
    if let Some((rows, cols)) = size {
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, ws).context("process.consoleSize: set it")?;
    }
    if mount_console {
        mount_console_on(&name)?;
    }
    send_master(socket, master.as_fd()).context("send the pty master over the console socket")?;
    drop(master);
    let slave = rustix::fs::open(
        &name,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", name.display()))?;
    make_stdio(slave)
}

/// /dev/console: an empty file with the pty bound on it.
fn mount_console_on(pty: &Path) -> Result<()> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let target = super::resolve::create_in_root(
        root.as_fd(),
        Path::new("/dev/console"),
        super::resolve::Kind::File,
    )
    .context("create /dev/console")?;
    super::mounts::bind_fd(pty, target.as_fd(), false, &Default::default())
        .context("bind the pty on /dev/console")
}

fn send_master(socket: BorrowedFd<'_>, master: BorrowedFd<'_>) -> std::io::Result<()> {
    let fds = [master];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let payload = b"/dev/ptmx";
    sendmsg(
        socket,
        &[IoSlice::new(payload)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// The pty as fds 0, 1, 2 and the controlling terminal of our session.
fn make_stdio(slave: OwnedFd) -> Result<()> {
    for fd in 0..3 {
        nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&slave), fd)
            .context("dup the pty onto stdio")?;
    }
    drop(slave);
    rustix::process::ioctl_tiocsctty(std::io::stdin().as_fd())
        .context("make the pty the controlling terminal")?;
    Ok(())
}
