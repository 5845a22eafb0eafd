//! Giving memory back once the monitor goes idle. A monitor lives as long as its
//! container and sleeps almost all of that time, but creating and starting the container
//! (spec parsing, the runtime's setup, 32 KiB read buffers) leaves heap and stack pages
//! dirty that nothing will touch again: ~150 KiB of the ~330 KiB a monitor holds.

use std::time::Duration;

/// How long the loop must have had nothing to do before memory is released.
pub(crate) const IDLE: Duration = Duration::from_secs(1);

/// Pages kept below the stack pointer (the red zone and the next calls' frames).
const STACK_KEEP: usize = 8 << 10;

/// Return free heap pages and the unused part of the main thread's stack to the kernel.
/// Call from the top of the loop, where the stack is shallow.
pub(crate) fn release() {
    // SAFETY: malloc_trim only releases free heap pages; no pointers are invalidated.
    unsafe { libc::malloc_trim(0) };
    release_stack();
}

fn release_stack() {
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    if let Some(low) = stack_low_end() {
        // SAFETY: `low` is the bottom of the main thread's stack mapping (from
        // /proc/self/maps) and `sp` is in our own frame on that stack. Nothing lives below
        // the stack pointer of this single-threaded process (signal handlers run on an
        // altstack or on top of the current frame).
        unsafe { release_below(low, sp) };
    }
}

/// Drop the pages of `[low, sp - STACK_KEEP)`: they are zero-filled again on next use,
/// which a stack never reads before writing.
///
/// # Safety
/// The range must be one anonymous private mapping holding no live data.
unsafe fn release_below(low: usize, sp: usize) {
    let page = page_size();
    let high = sp.saturating_sub(STACK_KEEP) & !(page - 1);
    if high > low {
        // SAFETY: the caller guarantees [low, high) is dead memory of one mapping.
        unsafe { libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED) };
    }
}

/// The lowest address of the `[stack]` mapping.
fn stack_low_end() -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let range = line.split_whitespace().next()?;
    usize::from_str_radix(range.split('-').next()?, 16).ok()
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which pages of [addr, addr + len) are resident.
    fn resident(addr: usize, len: usize) -> Vec<bool> {
        let mut v = vec![0u8; len / page_size()];
        // SAFETY: mincore on a mapping we own, into a vector of one byte per page.
        let r = unsafe { libc::mincore(addr as *mut libc::c_void, len, v.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        v.iter().map(|b| b & 1 == 1).collect()
    }

    #[test]
    fn releases_only_below_the_kept_frame() {
        let len = 64 * page_size();
        // SAFETY: a fresh private anonymous mapping, unmapped at the end.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base as usize;
        // SAFETY: writing inside the mapping just made.
        unsafe { std::ptr::write_bytes(base as *mut u8, 7, len) };
        assert!(resident(base, len).iter().all(|&r| r), "control: all pages touched");
        let sp = base + len - 100;
        // SAFETY: the mapping is ours and holds nothing we read again below `sp - KEEP`.
        unsafe { release_below(base, sp) };
        let after = resident(base, len);
        let kept = (STACK_KEEP / page_size()) + 1;
        assert!(after[..after.len() - kept].iter().all(|&r| !r), "{after:?}");
        assert!(after[after.len() - kept + 1..].iter().all(|&r| r), "{after:?}");
        // What was kept still holds its data; released pages read back as zero.
        // SAFETY: reads inside the mapping.
        unsafe {
            assert_eq!(*((base + len - 1) as *const u8), 7);
            assert_eq!(*(base as *const u8), 0);
            libc::munmap(base as *mut libc::c_void, len);
        }
    }

    #[test]
    fn finds_the_main_stack() {
        let low = stack_low_end().expect("a [stack] mapping");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps.lines().find(|l| l.ends_with("[stack]")).unwrap();
        assert!(line.starts_with(&format!("{low:x}-")), "{line}");
        assert!(line.contains(" rw"), "{line}");
    }
}
