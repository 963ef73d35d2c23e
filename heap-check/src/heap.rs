//! The recording allocator.
//!
//! While recording is on, a freed block is not freed: its address, size and
//! the current script step go into a fixed table and its bytes are left
//! exactly as the freeing code left them. Nothing ever writes to it again
//! (the allocator never hands it out, nobody holds a pointer to it), so at
//! the end each recorded block shows what the library left behind.
//!
//! While recording is off, a freed block is wiped and then really freed.
//! That keeps the harness's own work (setup, reading saved states, deriving
//! secrets) from leaving residue that a later library allocation could
//! reuse, half overwrite and free while recording: anything found in a
//! recorded block was written during the recorded run.
//!
//! The allocator itself never allocates: the table is a static array.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};

/// Freed blocks the table can hold (each entry 20 bytes, in .bss).
pub const CAPACITY: usize = 1 << 21;

static RECORDING: AtomicBool = AtomicBool::new(false);
static STEP: AtomicU32 = AtomicU32::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static OVERFLOW: AtomicUsize = AtomicUsize::new(0);
static PTRS: [AtomicUsize; CAPACITY] = [const { AtomicUsize::new(0) }; CAPACITY];
static SIZES: [AtomicUsize; CAPACITY] = [const { AtomicUsize::new(0) }; CAPACITY];
static STEPS: [AtomicU32; CAPACITY] = [const { AtomicU32::new(0) }; CAPACITY];

/// The global allocator of this binary.
pub struct Recording;

/// Writes zeros the optimizer cannot drop (stores right before `free` are
/// otherwise dead stores).
///
/// # Safety
/// `ptr` must be valid for `len` bytes of writes.
pub unsafe fn wipe_raw(ptr: *mut u8, len: usize) {
    for i in 0..len {
        // SAFETY: i < len, and the caller guarantees len writable bytes.
        unsafe { ptr.add(i).write_volatile(0) };
    }
    core::sync::atomic::compiler_fence(SeqCst);
}

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if RECORDING.load(SeqCst) {
            let i = COUNT.fetch_add(1, SeqCst);
            if i < CAPACITY {
                PTRS[i].store(ptr as usize, SeqCst);
                SIZES[i].store(layout.size(), SeqCst);
                STEPS[i].store(STEP.load(SeqCst), SeqCst);
            } else {
                // Kept (never freed) but not scannable: the report fails.
                OVERFLOW.fetch_add(1, SeqCst);
            }
            return;
        }
        // SAFETY: the block is ours to free, so ours to overwrite first.
        unsafe {
            wipe_raw(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    /// Always a move: a new block, a copy, and the old block through
    /// `dealloc`, so it is recorded (or wiped) like any other free. A
    /// realloc in place (which `System` may do) would hide the stale tail
    /// of a shrink; moving never hides anything.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc::realloc guarantees new_size, rounded up to
        // the alignment, does not overflow isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: new_size is non-zero (GlobalAlloc contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size, and distinct.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Turns recording on or off; returns the previous setting.
pub fn set_recording(on: bool) -> bool {
    RECORDING.swap(on, SeqCst)
}

/// Runs `f` with recording off (the harness's own work), then puts the
/// previous setting back.
pub fn paused<T>(f: impl FnOnce() -> T) -> T {
    let was = set_recording(false);
    let out = f();
    set_recording(was);
    out
}

/// Tags the blocks freed from now on with script step `step`.
pub fn set_step(step: u32) {
    STEP.store(step, SeqCst);
}

/// A recorded freed block.
#[derive(Clone, Copy)]
pub struct Block {
    pub ptr: usize,
    pub size: usize,
    pub step: u32,
}

impl Block {
    /// The block's bytes.
    ///
    /// # Safety
    /// Only for blocks from [`blocks`]: they are never freed, so they stay
    /// valid and unchanged until the process exits.
    pub unsafe fn bytes(&self) -> &'static [u8] {
        // SAFETY: see above; a recorded block came from System.alloc with
        // this size and is never freed.
        unsafe { core::slice::from_raw_parts(self.ptr as *const u8, self.size) }
    }
}

/// Every recorded block, in the order they were freed.
pub fn blocks() -> Vec<Block> {
    let n = COUNT.load(SeqCst).min(CAPACITY);
    (0..n)
        .map(|i| Block { ptr: PTRS[i].load(SeqCst), size: SIZES[i].load(SeqCst), step: STEPS[i].load(SeqCst) })
        .collect()
}

/// Frees that happened while the table was full (kept, never scanned).
pub fn overflowed() -> usize {
    OVERFLOW.load(SeqCst)
}

/// Wipes a byte vector's whole capacity, then frees it.
pub fn wipe_vec(mut v: Vec<u8>) {
    // SAFETY: the vector's buffer is valid for `capacity` bytes.
    unsafe { wipe_raw(v.as_mut_ptr(), v.capacity()) };
    drop(v);
}

/// Wipes a string's whole capacity, then frees it.
pub fn wipe_string(s: String) {
    wipe_vec(s.into_bytes());
}
