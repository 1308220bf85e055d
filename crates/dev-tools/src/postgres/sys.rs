//! The only unsafe code of the dev mode: thin libc calls (root check, signals, the
//! `postgres` user's ids, the parent-death signal of the postmaster), and the process and
//! file checks next to them.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::{fs, io};

use anyhow::ensure;

#[expect(unsafe_code, reason = "geteuid(2) has no preconditions")]
pub(super) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

#[expect(unsafe_code, reason = "kill(2) has no memory-safety preconditions")]
pub(super) fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid @ 1..) = libc::pid_t::try_from(pid) {
        // SAFETY: a plain syscall; pid > 0 so it never targets a process group.
        unsafe { libc::kill(pid, sig) };
    }
}

/// (uid, gid) of a user, with the thread-safe getpwnam_r (getpwnam returns a static buffer).
#[expect(unsafe_code, reason = "getpwnam_r(3) writes into buffers we own")]
pub(super) fn lookup_user(name: &str) -> anyhow::Result<Option<(u32, u32)>> {
    let name = std::ffi::CString::new(name)?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero is a valid `passwd` (integers and null pointers).
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let (name, buf_ptr, len) = (name.as_ptr(), buf.as_mut_ptr(), buf.len());
    // SAFETY: every pointer is valid for the call and `len` is the real size of `buf`.
    let rc = unsafe { libc::getpwnam_r(name, &raw mut pwd, buf_ptr, len, &raw mut found) };
    ensure!(rc == 0, "looking up the `postgres` user: {}", io::Error::from_raw_os_error(rc));
    Ok((!found.is_null()).then_some((pwd.pw_uid, pwd.pw_gid)))
}

#[expect(unsafe_code, reason = "pre_exec runs between fork and exec")]
pub(super) fn set_parent_death_signal(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure only makes async-signal-safe syscalls and allocates nothing (another
    // thread may have held the allocator's lock at fork). std runs it after setuid/setgid,
    // which matters: changing credentials clears the death signal.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(io::Error::last_os_error());
            }
            // We died between fork and prctl: the signal would never come, so do not start.
            if libc::getppid().cast_unsigned() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Alive and not a zombie (a killed postmaster lingers as a zombie until it is reaped).
pub(super) fn is_live(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

pub(super) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
