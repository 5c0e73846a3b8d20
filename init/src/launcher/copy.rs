//! `tmpcopyup`: the files a tmpfs is mounted over are copied into it, so
//! that the container sees the image's content on a writable tmpfs.

use rustix::fs::{
    chownat, fchmod, mkdirat, mknodat, openat, readlinkat, statat, symlinkat, AtFlags, Dir,
    FileType, Gid, Mode, OFlags, Uid,
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
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            mkdirat(to, name, mode)?;
            let src = openat(
                from,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = openat(
                to,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            copy_dir(src.as_fd(), dst.as_fd())?;
            fchmod(&dst, mode)?;
        }
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
                mode,
            )?;
            io::copy(&mut File::from(src), &mut File::from(dst.try_clone()?))?;
            fchmod(&dst, mode)?;
        }
        FileType::Symlink => {
            let target = readlinkat(from, name, Vec::new())?;
            symlinkat(target.as_c_str(), to, name)?;
        }
        ft => {
            mknodat(to, name, ft, mode, st.st_rdev)?;
        }
    }
    chownat(
        to,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}
