//! `tmpcopyup`: the files a tmpfs is mounted over are copied into it, so
//! that the container sees the image's content on a writable tmpfs.

use rustix::fs::{
    chownat, mkdirat, mknodat, openat, readlinkat, statat, symlinkat, AtFlags, Dir, FileType, Gid,
    Mode, OFlags, Uid,
};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

/// Copies the tree under `from` into `to` (both directory fds): files,
/// directories, symlinks and special files, with their modes and owners.
pub fn copy_dir(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let dup = rustix::io::fcntl_dupfd_cloexec(from, 0)?;
    for entry in Dir::read_from(&dup)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        copy_entry(from, to, name)?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<()> {
    let st = statat(from, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    let ft = FileType::from_raw_mode(st.st_mode);
    let open_dir = |dir: BorrowedFd<'_>| {
        openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    match ft {
        FileType::Directory => mkdirat(to, name, Mode::from_raw_mode(0o700))?,
        FileType::RegularFile => {
            let src = openat(
                from,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = openat(
                to,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            io::copy(&mut File::from(src), &mut File::from(dst))?;
        }
        FileType::Symlink => {
            let target = readlinkat(from, name, Vec::new())?;
            symlinkat(target.as_c_str(), to, name)?;
        }
        _ => mknodat(to, name, ft, Mode::from_raw_mode(0o600), st.st_rdev)?,
    }
    // Owner first: chown clears set-id bits that chmod then puts back.
    chownat(
        to,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if ft == FileType::Directory {
        copy_dir(open_dir(from)?.as_fd(), open_dir(to)?.as_fd())?;
    }
    if ft != FileType::Symlink {
        rustix::fs::chmodat(to, name, mode, AtFlags::empty())?;
    }
    Ok(())
}
