//! Scheduling priority of background threads (the applier, the store writer).

/// How much lower the background threads' scheduling priority is than request
/// handling's: on a busy machine acceptance (validate, log, fsync, 202) and queries get
/// the CPU first, and the backlog, which is on disk, is applied and stored with what is
/// left.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's priority by `BACKGROUND_NICE` (Linux: `setpriority` on
/// the thread id; threads it spawns inherit it). Best effort: a refusal changes only
/// speed, so the error is for a debug log. The priority cannot be raised back without
/// `CAP_SYS_NICE`, so only threads of their own call this, not a shared pool's.
pub fn lower_priority() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        rustix::process::setpriority_process(Some(tid), current + BACKGROUND_NICE)
            .map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}
