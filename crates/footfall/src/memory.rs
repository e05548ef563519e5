//! Process memory settings and the optional memory report.
//!
//! Two allocators share the process: Rust code allocates through mimalloc (the global
//! allocator), DuckDB's C++ through glibc malloc. Each keeps freed memory for reuse;
//! these settings bound how much of it stays resident.
//!
//! The only module of the workspace with unsafe code: foreign calls into the two
//! allocators' C APIs, none of which takes or keeps a Rust reference.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

/// glibc's `mallinfo2` (glibc >= 2.33).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(C)]
#[derive(Default)]
struct MallInfo2 {
    /// Non-mmapped space allocated from the system (all arenas).
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    /// Space in mmapped chunks (large allocations).
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    /// Allocated space in the arenas.
    uordblks: usize,
    /// Free space in the arenas (resident until trimmed).
    fordblks: usize,
    keepcost: usize,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallinfo2() -> MallInfo2;
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallopt(param: i32, value: i32) -> i32;
    fn dlsym(
        handle: *mut std::ffi::c_void,
        symbol: *const std::ffi::c_char,
    ) -> *mut std::ffi::c_void;
}

/// glibc's `RTLD_NEXT` (dlfcn.h): the next definition of a symbol after this object's.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const RTLD_NEXT: *mut std::ffi::c_void = -1isize as *mut std::ffi::c_void;

/// Stands in for glibc's `malloc_trim` in the whole binary, DuckDB's C++ included (the
/// linker binds its calls to this definition before glibc's), and does nothing: the
/// trimmer below decides alone when glibc's free memory goes back to the system
/// ([`glibc_malloc_trim`] calls glibc's).
///
/// Why: each DuckDB worker thread idle for 0.5 s trims glibc
/// (`TaskScheduler::ExecuteForever` -> `Allocator::ThreadFlush`), which hands back the
/// pages of every free chunk, so each dashboard load after a pause faulted the memory of
/// its hash tables in again: ~6k page faults per unfiltered load at 10M events 1.5 s
/// after the last (with the trimmer's once-a-second trims), 64 % of them in
/// `GroupedAggregateHashTable::Resize`'s memset (`perf record -e page-faults`), where
/// back-to-back loads had ~1.3k.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn malloc_trim(_pad: usize) -> i32 {
    0
}

/// glibc's own `malloc_trim(0)`, found past the stand-in above (nothing is trimmed if it
/// is not found, which is logged once).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc_malloc_trim() {
    type Trim = unsafe extern "C" fn(usize) -> i32;
    static TRIM: std::sync::OnceLock<Option<Trim>> = std::sync::OnceLock::new();
    let trim = TRIM.get_or_init(|| {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the symbol
        // up; a non-null result is glibc's `int malloc_trim(size_t)`.
        let found = unsafe { dlsym(RTLD_NEXT, c"malloc_trim".as_ptr()) };
        if found.is_null() {
            tracing::warn!("glibc's malloc_trim not found: freed memory stays resident");
            return None;
        }
        // SAFETY: as above, the function's address with its C signature.
        Some(unsafe { std::mem::transmute::<*mut std::ffi::c_void, Trim>(found) })
    });
    if let Some(trim) = trim {
        // SAFETY: glibc's malloc_trim takes a byte count and touches only the allocator's
        // own free chunks, under its arena locks.
        unsafe { trim(0) };
    }
}

/// glibc's `M_ARENA_MAX` (malloc.h).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_ARENA_MAX: i32 = -8;

// mimalloc's C API (v3, the `mimalloc` crate's default), linked through the `mimalloc`
// crate; its Rust declarations of these need the `extended` feature, which would only
// add declarations.
unsafe extern "C" {
    fn mi_option_set(option: i32, value: std::ffi::c_long);
    fn mi_option_get(option: i32) -> std::ffi::c_long;
    fn mi_collect(force: bool);
    fn mi_process_info(
        elapsed_msecs: *mut usize,
        user_msecs: *mut usize,
        system_msecs: *mut usize,
        current_rss: *mut usize,
        peak_rss: *mut usize,
        current_commit: *mut usize,
        peak_commit: *mut usize,
        page_faults: *mut usize,
    );
}

/// `mi_option_purge_delay` and `mi_option_arena_purge_mult` in mimalloc v3's
/// `mi_option_t`.
const MI_OPTION_PURGE_DELAY: i32 = 15;
const MI_OPTION_ARENA_PURGE_MULT: i32 = 24;

/// Milliseconds mimalloc keeps freed pages before returning them. 0 (at once) madvised
/// ~100 GiB in a 10M-event load, re-faulted page by page (a quarter of the server's CPU
/// was system time); 10 ms lets pages be reused within a batch and still returns them
/// long before the next one: bulk acceptance 336-356k -> 448-486k events/s, until
/// queryable 93-96k -> 107-108k (`footfall bench --only bulk --runs 3`, alternating).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// How often the trimmer looks at glibc's free memory.
const TRIM_EVERY: Duration = Duration::from_secs(1);
/// Free memory in glibc's arenas above which the trimmer returns it to the system...
const TRIM_ABOVE: usize = 16 << 20;
/// ...once it has stayed free this long: a dashboard's next load reuses the memory of
/// the last one's hash tables, and returned pages are faulted in again (zeroed) when
/// reused. (jemalloc's default decay of unused pages is 10 s too.)
const TRIM_QUIET: Duration = Duration::from_secs(10);
/// How often the trimmer reads the resident set when a memory target is set: a
/// dashboard's queries free and reallocate ~100 MiB each within a few hundred ms.
const TARGET_CHECK_EVERY: Duration = Duration::from_millis(20);
/// Above the memory target, glibc free memory worth returning.
const TARGET_TRIM_ABOVE: usize = 8 << 20;

/// Allocator settings for the server, applied before the store starts DuckDB's threads.
#[derive(Debug, Clone, Copy)]
pub struct AllocatorSettings {
    /// glibc arenas (DuckDB's C++ allocates through glibc malloc); 0 keeps glibc's
    /// default of 8 per core.
    pub malloc_arena_max: u32,
    /// Resident set above which freed memory is returned at once (`memory_target_mb`);
    /// 0: off.
    pub memory_target_bytes: u64,
}

/// Applies `settings` and starts the trimmer thread. Call before DuckDB starts threads:
/// glibc creates arenas on first contention and never removes them.
pub fn apply(settings: AllocatorSettings) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if settings.malloc_arena_max > 0 {
        let arenas = i32::try_from(settings.malloc_arena_max).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an integer parameter of the allocator; it is
        // thread-safe and takes no pointers.
        if unsafe { mallopt(M_ARENA_MAX, arenas) } != 1 {
            tracing::warn!(arenas, "glibc refused M_ARENA_MAX");
        }
    }
    // mimalloc asks for transparent huge pages on its arenas (MADV_HUGEPAGE), so a page
    // it purges and then reuses is faulted back as a zeroed 2 MiB huge page (zeroing was
    // ~3 % of the server's CPU under `/api/event` load) and a few live bytes keep 2 MiB
    // resident. Off for the process: peaks ~15-35 MiB lower, same rates (BENCHMARKS.md
    // History). On machines whose THP mode is "always" this covers DuckDB's memory too.
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "could not turn transparent huge pages off");
    }
    // mimalloc keeps freed pages 1 s (pages) and 10 s (arena blocks) before returning
    // them to the system; a batch of 100,000 events is freed every second or so, so the
    // resident set held two or three batches' worth of freed pages. Purge after
    // `PURGE_DELAY_MS`.
    // SAFETY: mi_option_set stores an integer option; thread-safe, no pointers.
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        mi_option_set(MI_OPTION_ARENA_PURGE_MULT, 1);
    }
    // SAFETY: as above, a read of an integer option.
    let (delay, mult) = unsafe {
        (
            mi_option_get(MI_OPTION_PURGE_DELAY),
            mi_option_get(MI_OPTION_ARENA_PURGE_MULT),
        )
    };
    tracing::debug!(
        arena_max = settings.malloc_arena_max,
        purge_delay = delay,
        arena_purge_mult = mult,
        "allocator settings"
    );
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("footfall-malloc-trim".into())
            .spawn(move || trim_loop(settings.memory_target_bytes));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the malloc trimmer");
        }
    }
}

/// glibc keeps memory freed inside its arenas resident (only the top of an arena is
/// returned by itself): after a large DuckDB write or query hundreds of MiB stay with
/// the process. `malloc_trim` hands the free pages back (`MADV_DONTNEED`). mimalloc
/// runs its delayed purges only when the allocator is called again, so a server that
/// goes quiet right after a burst (start-up's id load) kept ~175 MiB freed but
/// resident; `mi_collect` runs them.
///
/// Once a second mimalloc's are returned, and glibc's when it has held more than
/// `TRIM_ABOVE` newly free for `TRIM_QUIET` (nothing else trims glibc: DuckDB's calls
/// reach the stand-in `malloc_trim`).
/// With a memory `target`, the resident set is also read every `TARGET_CHECK_EVERY`, and
/// glibc's free memory returned as soon as the set is above the target and has grown
/// since the last trim: back-to-back dashboard queries each free ~100 MiB of DuckDB hash
/// tables that glibc would otherwise keep until the next second, while the next query
/// allocates afresh. Returning it costs page faults when memory is allocated again, so
/// only above the target.
///
/// "Newly": `mallinfo2` and `malloc_trim` walk every free chunk of every arena, and
/// glibc counts trimmed chunks as free still. After a 10M-event load its arenas hold
/// ~150 MiB of such chunks for good, so trimming whenever "free" was above a threshold
/// walked them every 20 ms: 10 % of the samples of a server answering dashboard queries
/// (perf), ~25 % of their time right after the load (`footfall bench`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_loop(target: u64) {
    let mut last_routine = std::time::Instant::now();
    let mut glibc = GlibcTrim::default();
    // The resident set after the last trim for the target, followed down: the next trim
    // waits until it has grown by `TARGET_TRIM_ABOVE`.
    let mut rss_floor = u64::MAX;
    loop {
        std::thread::sleep(if target == 0 {
            TRIM_EVERY
        } else {
            TARGET_CHECK_EVERY
        });
        if target > 0
            && let Some(rss) = resident_bytes()
        {
            if rss > target && rss > rss_floor.saturating_add(TARGET_TRIM_ABOVE as u64) {
                glibc.trim();
                rss_floor = resident_bytes().unwrap_or(rss);
                tracing::debug!(
                    before_mib = rss >> 20,
                    after_mib = rss_floor >> 20,
                    "above the memory target: glibc's free memory returned"
                );
            } else {
                rss_floor = rss_floor.min(rss);
            }
        }
        if last_routine.elapsed() >= TRIM_EVERY {
            last_routine = std::time::Instant::now();
            // SAFETY: mi_collect takes a flag and works on the allocator's own structures.
            unsafe { mi_collect(true) };
            glibc.trim_if_freed(TRIM_ABOVE, TRIM_QUIET);
        }
    }
}

/// glibc's free memory as of the last trim (`mallinfo2().fordblks`, which still counts
/// the chunks a trim handed back).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[derive(Default)]
struct GlibcTrim {
    free_after: usize,
    /// When the free memory above the mark was first seen, since the last trim.
    freed_at: Option<Instant>,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
impl GlibcTrim {
    /// Trims when more than `above` bytes freed since the last trim have stayed free for
    /// `quiet` (allocations in between lower the mark: they may have reused trimmed
    /// pages).
    fn trim_if_freed(&mut self, above: usize, quiet: Duration) {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value.
        let free = unsafe { mallinfo2() }.fordblks;
        if free > self.free_after.saturating_add(above) {
            let since = *self.freed_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= quiet {
                tracing::debug!(
                    free_mib = free >> 20,
                    "glibc's free memory returned after staying free"
                );
                self.trim();
            }
        } else {
            self.free_after = self.free_after.min(free);
            self.freed_at = None;
        }
    }

    fn trim(&mut self) {
        glibc_malloc_trim();
        self.freed_at = None;
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value.
        self.free_after = unsafe { mallinfo2() }.fordblks;
    }
}

/// The process's resident set in bytes (`/proc/self/statm`, in pages).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// What the report prints: resident set, and what each allocator holds.
fn report_line() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    let mut line = format!(
        "rss {} MiB (anon {} file {}) peak {} MiB",
        kib("VmRSS:"),
        kib("RssAnon:"),
        kib("RssFile:"),
        kib("VmHWM:")
    );
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value.
        let m = unsafe { mallinfo2() };
        let mib = |b: usize| b >> 20;
        line.push_str(&format!(
            "; glibc: arenas {} MiB (in use {}, free {}), mmapped {} MiB",
            mib(m.arena),
            mib(m.uordblks),
            mib(m.fordblks),
            mib(m.hblkhd)
        ));
    }
    let (mut elapsed, mut user, mut system, mut rss, mut peak_rss, mut commit) = (0, 0, 0, 0, 0, 0);
    let (mut peak_commit, mut faults) = (0, 0);
    // SAFETY: every pointer is a valid, exclusive `usize` for the duration of the call.
    unsafe {
        mi_process_info(
            &mut elapsed,
            &mut user,
            &mut system,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        );
    }
    line.push_str(&format!(
        "; mimalloc: committed {} MiB (peak {})",
        commit >> 20,
        peak_commit >> 20
    ));
    line
}

/// Logs the memory report every `every` (`memory_report_secs`, target
/// `footfall::memory`): where the resident set is, for measuring.
pub fn spawn_report(every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("footfall-memory-report".into())
        .spawn(move || {
            loop {
                tracing::info!(target: "footfall::memory", "{}", report_line());
                std::thread::sleep(every);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the memory report");
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    unsafe extern "C" {
        fn malloc(size: usize) -> *mut u8;
        fn free(ptr: *mut u8);
    }

    /// What the memory target relies on: memory freed into glibc's arenas stays
    /// resident until `GlibcTrim` hands it back, whoever else calls `malloc_trim`.
    #[test]
    fn freed_glibc_memory_is_returned_to_the_system() {
        const BLOCK: usize = 64 << 10; // below glibc's mmap threshold: arena memory
        const BLOCKS: usize = 1024; // 64 MiB
        // SAFETY: plain malloc/free of blocks this test owns; each is written within
        // its size and freed once.
        let blocks: Vec<*mut u8> = (0..BLOCKS).map(|_| unsafe { malloc(BLOCK) }).collect();
        assert!(blocks.iter().all(|b| !b.is_null()));
        for &b in &blocks {
            // SAFETY: b points to BLOCK writable bytes.
            unsafe { std::ptr::write_bytes(b, 1, BLOCK) };
        }
        // Keep the last block so the freed ones are not the arena's top, which glibc
        // would return by itself.
        for &b in &blocks[..BLOCKS - 1] {
            // SAFETY: allocated above, freed once.
            unsafe { free(b) };
        }
        let held = resident_bytes().expect("resident set");
        // `malloc_trim` as C code finds it by name (DuckDB's calls) is the stand-in: it
        // keeps the freed memory.
        // SAFETY: a lookup of a NUL-terminated name in the process's global scope.
        let by_name = unsafe { dlsym(std::ptr::null_mut(), c"malloc_trim".as_ptr()) };
        assert_eq!(
            by_name as usize,
            malloc_trim as extern "C" fn(usize) -> i32 as usize
        );
        // SAFETY: the stand-in's address, with its signature.
        let trim: extern "C" fn(usize) -> i32 = unsafe { std::mem::transmute(by_name) };
        trim(0);
        let kept = resident_bytes().expect("resident set");
        assert!(
            held.saturating_sub(kept) < 32 << 20,
            "resident set {held} -> {kept} bytes: DuckDB's malloc_trim returned the freed 64 MiB"
        );
        GlibcTrim::default().trim_if_freed(TARGET_TRIM_ABOVE, Duration::ZERO);
        let after = resident_bytes().expect("resident set");
        // SAFETY: the one block still allocated.
        unsafe { free(blocks[BLOCKS - 1]) };
        assert!(
            held.saturating_sub(after) >= 32 << 20,
            "resident set {held} -> {after} bytes: the freed 64 MiB stayed"
        );
    }
}
