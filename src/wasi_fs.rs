//! The component's file reads for [`crate::drive::Io::read_file`], through the host's
//! `wasi:filesystem` preopens only: the Arc key directory and the federated token's directory.

use crate::proto::{FileError, FileErrorKind, FileRead};
use wasi::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

/// Reads `read.path` if a preopened directory contains it, refusing symbolic links unless
/// `read.follow_symlinks`, non-regular files, and anything larger than `read.max_len` by stat
/// or by the (capped) read itself.
pub(crate) fn read_file(read: &FileRead) -> Result<Vec<u8>, FileError> {
    let (dir, relative) = preopen_for(&read.path).ok_or_else(|| {
        FileError::new(
            FileErrorKind::NoAccess,
            format!("no preopened directory contains {}", read.path),
        )
    })?;
    let path_flags = if read.follow_symlinks {
        PathFlags::SYMLINK_FOLLOW
    } else {
        PathFlags::empty()
    };
    let file = dir
        .open_at(
            path_flags,
            &relative,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .map_err(|code| fs_error(code, &read.path))?;
    // Checked on the open descriptor, so a swap after a path check cannot slip through.
    let stat = file.stat().map_err(|code| fs_error(code, &read.path))?;
    if stat.type_ != DescriptorType::RegularFile {
        return Err(FileError::new(
            FileErrorKind::NotRegularFile,
            format!("{} is not a regular file", read.path),
        ));
    }
    let too_large = || {
        FileError::new(
            FileErrorKind::TooLarge,
            format!("{} is larger than {} bytes", read.path, read.max_len),
        )
    };
    if stat.size > read.max_len as u64 {
        return Err(too_large());
    }
    let (data, _end) = file
        .read(read.max_len as u64 + 1, 0)
        .map_err(|code| fs_error(code, &read.path))?;
    if data.len() > read.max_len {
        return Err(too_large());
    }
    Ok(data)
}

/// The preopen with the longest guest path that is a directory prefix of `path`, and the
/// rest of `path` relative to it.
fn preopen_for(path: &str) -> Option<(Descriptor, String)> {
    let mut best: Option<(Descriptor, String, usize)> = None;
    for (dir, guest) in wasi::filesystem::preopens::get_directories() {
        let prefix = guest.trim_end_matches('/');
        let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        if !rest.is_empty() && best.as_ref().is_none_or(|(_, _, len)| prefix.len() > *len) {
            best = Some((dir, rest.to_string(), prefix.len()));
        }
    }
    best.map(|(dir, rest, _)| (dir, rest))
}

fn fs_error(code: ErrorCode, path: &str) -> FileError {
    let (kind, what) = match code {
        ErrorCode::NoEntry => (FileErrorKind::NotFound, "no such file"),
        ErrorCode::Loop => (FileErrorKind::NotRegularFile, "a symbolic link"),
        ErrorCode::IsDirectory => (FileErrorKind::NotRegularFile, "a directory"),
        ErrorCode::Access | ErrorCode::NotPermitted => (FileErrorKind::NoAccess, "access denied"),
        _ => (FileErrorKind::Other, "read failed"),
    };
    FileError::new(kind, format!("{path}: {what}"))
}
