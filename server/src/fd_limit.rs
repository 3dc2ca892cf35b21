//! The process's file descriptor limit (`RLIMIT_NOFILE`): every connection costs one.
//!
//! Many service managers start processes with a soft limit of 1,024 and a much higher
//! hard one. [`raise`] lifts the soft limit to the hard one (the binary calls it at
//! start); the server then sizes its connection caps to [`current`] (see
//! `net/admission.rs`), so that one address cannot push `accept` into "too many open
//! files" for everyone.

use std::io;

/// Raises the soft descriptor limit to the hard one; returns the limit now in force
/// (None: unlimited, or not a Unix system).
pub fn raise() -> io::Result<Option<u64>> {
    imp::raise()
}

/// The soft descriptor limit in force (None: unlimited, or not a Unix system).
pub fn current() -> Option<u64> {
    imp::current()
}

/// Sets the soft and hard descriptor limits (tests use it in a child process to run the
/// server under a small limit). Lowering the hard limit cannot be undone.
pub fn set(soft: u64, hard: u64) -> io::Result<()> {
    imp::set(soft, hard)
}

#[cfg(unix)]
mod imp {
    use std::io;

    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    pub(super) fn raise() -> io::Result<Option<u64>> {
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: limit.maximum,
                    maximum: limit.maximum,
                },
            )?;
        }
        Ok(current())
    }

    pub(super) fn current() -> Option<u64> {
        getrlimit(Resource::Nofile).current
    }

    pub(super) fn set(soft: u64, hard: u64) -> io::Result<()> {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(soft),
                maximum: Some(hard),
            },
        )?;
        Ok(())
    }
}

#[cfg(not(unix))]
mod imp {
    use std::io;

    pub(super) fn raise() -> io::Result<Option<u64>> {
        Ok(None)
    }

    pub(super) fn current() -> Option<u64> {
        None
    }

    pub(super) fn set(_soft: u64, _hard: u64) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Run as a child process (below), so that the limits of the other tests stay.
    #[test]
    fn raise_lifts_the_soft_limit_to_the_hard_one_child() {
        if std::env::var_os("TICKSYNC_FD_CHILD").is_none() {
            return;
        }
        let hard = 4096;
        super::set(256, hard).expect("lower the limits");
        assert_eq!(super::current(), Some(256));
        assert_eq!(super::raise().expect("raise"), Some(hard));
        assert_eq!(super::current(), Some(hard));
    }

    #[cfg(unix)]
    #[test]
    fn raise_lifts_the_soft_limit_to_the_hard_one() {
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "fd_limit::tests::raise_lifts_the_soft_limit_to_the_hard_one_child",
            ])
            .env("TICKSYNC_FD_CHILD", "1")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run the test binary");
        assert!(status.success(), "the soft limit was not raised");
    }
}
