//! Children of `crm up` that must not outlive it. `kill_on_drop` and a clean stop both need
//! `crm up` alive to run; when it is killed outright (SIGKILL, the OOM killer) only the
//! kernel can still act, so each child asks it, before it runs, for a signal when its parent
//! dies (PR_SET_PDEATHSIG): the worker and the bot their SIGTERM, the private Postgres and
//! Redis the signal that shuts each down cleanly.
//!
//! The kernel's "parent" is the thread that spawned the child, so spawn from a thread that
//! lives as long as `crm up`: the main thread or a runtime worker, never a blocking-pool one.

use nix::sys::signal::Signal;
use tokio::process::Command;

/// `cmd`'s process gets `signal` when this process dies, however it dies.
pub fn signal_on_parent_death(cmd: &mut Command, signal: Signal) -> &mut Command {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes the prctl(2)
    // and getppid(2) system calls, which are async-signal-safe; it allocates nothing and
    // touches no shared memory (the errors are plain errno values).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl, and then no signal would come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from(nix::errno::Errno::ESRCH));
            }
            Ok(())
        });
    }
    cmd
}
