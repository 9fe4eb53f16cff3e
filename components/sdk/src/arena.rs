//! A call-scoped bump ("arena") allocator for components (the default-on `arena-alloc`
//! feature installs it as the global allocator on single-threaded `wasm32`).
//!
//! A decoder call allocates in a burst (the host's copy of the input frames, the domain results,
//! their WIT form, the canonical-ABI result lists) and frees nearly everything by the end of the
//! call: the input is dropped when `decode` returns and the result lists are freed by
//! wit-bindgen's post-return. A bump pointer serves that pattern for a few instructions per
//! allocation, where the system allocator (dlmalloc in wasi-libc) keeps free lists.
//!
//! # Design
//!
//! - [`Bump`] is the core: a bump pointer over one region of addresses `[base, base + cap)`
//!   with a count of the live allocations it handed out. It is plain arithmetic on addresses
//!   (it never reads or writes the memory), so it is tested natively over any region.
//! - [`Arena`] holds up to [`MAX_CHUNKS`] chunks, each a [`Bump`] over a block taken from
//!   [`System`] (first [`FIRST_CHUNK`] bytes, each next one twice the last, [`MAX_TOTAL`] bytes
//!   in all). It allocates from the current chunk; when that is full it moves to a larger chunk
//!   with no live allocation, else takes a new chunk twice the largest, else any chunk with no
//!   live allocation, else falls back to [`System`]. So the chunks grow until one holds a whole
//!   call, and the calls after it stay in that chunk.
//! - `dealloc` and `realloc` find the owner of a pointer by address range: a chunk's range, else
//!   the system allocator's.
//!
//! # Invariants (what makes it sound)
//!
//! 1. Within a chunk, live allocations are disjoint and lie in `[base, base + top)`: `alloc`
//!    hands out only bytes at or above `top` and moves `top` past them.
//! 2. `top` moves down only (a) to `0` when the chunk's live count reaches zero (nothing in
//!    the chunk is live, so all of it may be handed out again), or (b) to the start of the
//!    allocation being freed or shrunk when that allocation ends exactly at `top` (the bytes
//!    above it belonged to it alone). Every allocation takes at least one byte, so two live
//!    allocations never end at the same address.
//! 3. Growing in place is allowed only for the allocation ending at `top`, and only within the
//!    chunk; shrinking in place is always allowed (the allocation keeps its start).
//! 4. Chunks are never returned to the system allocator, so no system allocation can lie in a
//!    chunk's range: routing a pointer by address is exact.
//! 5. The live count of a chunk counts the allocations it handed out that were not freed; it is
//!    decremented only by `dealloc` (or the move of a `realloc`) of a pointer in its range. A
//!    pointer still in use (a cached value, a leaked box) keeps its chunk from ever resetting;
//!    the other chunks, and the system allocator, carry on.
//! 6. The arena is not thread-safe: [`ArenaAlloc`] is `Sync` only on `wasm32` without the
//!    `atomics` feature, where there is a single thread, and the system allocator it calls never
//!    calls back into it.
//!
//! The price: memory freed in the middle of a call is reused only once its whole chunk is free
//! (or when it was the last allocation), so a call's peak is the sum of what it allocated, and
//! the arena keeps up to [`MAX_TOTAL`] bytes of linear memory once it has grown.
//! A vendor who wants the plain system allocator turns the feature off
//! (`default-features = false`).

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// At most this many chunks.
pub const MAX_CHUNKS: usize = 8;
/// Bytes of the first chunk.
pub const FIRST_CHUNK: usize = 64 << 10;
/// At most this many bytes in all chunks together.
pub const MAX_TOTAL: usize = 8 << 20;
/// Alignment of each chunk's block.
const CHUNK_ALIGN: usize = 16;

/// A bump pointer over the addresses `[base, base + cap)` with a count of live allocations.
///
/// Pure arithmetic: it never touches the memory it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bump {
    base: usize,
    cap: usize,
    /// Offset of the first free byte.
    top: usize,
    /// Allocations handed out and not freed.
    live: usize,
}

impl Bump {
    /// A region with no bytes (owns nothing, fits nothing).
    pub const EMPTY: Bump = Bump {
        base: 0,
        cap: 0,
        top: 0,
        live: 0,
    };

    /// A region of `cap` bytes at address `base`, all free.
    pub const fn new(base: usize, cap: usize) -> Self {
        Self {
            base,
            cap,
            top: 0,
            live: 0,
        }
    }

    /// Whether `addr` lies in the region.
    pub fn owns(&self, addr: usize) -> bool {
        addr.wrapping_sub(self.base) < self.cap
    }

    /// Allocations handed out and not freed.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Bytes from the start of the region to the first free byte.
    pub fn used(&self) -> usize {
        self.top
    }

    /// Bytes in the region.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Address of the first byte.
    pub fn base(&self) -> usize {
        self.base
    }

    /// Hands out `size` bytes (at least one) aligned to `align` (a power of two), or `None`
    /// when they do not fit.
    pub fn alloc(&mut self, size: usize, align: usize) -> Option<usize> {
        if !align.is_power_of_two() {
            return None;
        }
        let start = self.base.checked_add(self.top)?;
        let addr = start.checked_add(align - 1)? & !(align - 1);
        let end = addr.checked_add(size.max(1))?;
        let top = end - self.base;
        if top > self.cap {
            return None;
        }
        self.top = top;
        // Each live allocation holds at least one byte of the region: no overflow.
        self.live += 1;
        Some(addr)
    }

    /// Frees the allocation of `size` bytes at `addr`, which this region handed out and which
    /// is live. The region starts over when nothing in it is live; the last allocation's bytes
    /// are taken back at once.
    pub fn free(&mut self, addr: usize, size: usize) {
        debug_assert!(
            self.live > 0 && self.owns(addr),
            "free of a foreign pointer"
        );
        self.live = self.live.saturating_sub(1);
        if self.live == 0 {
            self.top = 0;
        } else if self.ends_at_top(addr, size) {
            self.top = addr - self.base;
        }
    }

    /// Resizes the live allocation at `addr` from `old` to `new` bytes without moving it: always
    /// possible when shrinking; when growing, only for the last allocation and within the region.
    pub fn resize_in_place(&mut self, addr: usize, old: usize, new: usize) -> bool {
        let new = new.max(1);
        if self.ends_at_top(addr, old) {
            let top = match addr.checked_add(new) {
                Some(end) => end - self.base,
                None => return false,
            };
            if top > self.cap {
                return false;
            }
            self.top = top;
            true
        } else {
            new <= old.max(1)
        }
    }

    /// Whether the allocation of `size` bytes at `addr` is the last one (ends at `top`).
    fn ends_at_top(&self, addr: usize, size: usize) -> bool {
        addr.checked_add(size.max(1)) == self.base.checked_add(self.top)
    }
}

/// Chunks of [`Bump`] over blocks of the system allocator, falling back to the system allocator.
#[derive(Debug)]
pub struct Arena {
    chunks: [Bump; MAX_CHUNKS],
    /// The system allocator's block under each chunk (pointers handed out derive from these).
    blocks: [*mut u8; MAX_CHUNKS],
    /// Chunks in use (`chunks[..count]`).
    count: usize,
    /// The chunk allocations come from first.
    current: usize,
    /// Allocations that fell back to the system allocator.
    fallbacks: usize,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    /// An arena with no chunk yet (the first allocation takes one).
    pub const fn new() -> Self {
        Self {
            chunks: [Bump::EMPTY; MAX_CHUNKS],
            blocks: [std::ptr::null_mut(); MAX_CHUNKS],
            count: 0,
            current: 0,
            fallbacks: 0,
        }
    }

    /// The chunks taken so far.
    pub fn chunks(&self) -> &[Bump] {
        self.chunks.get(..self.count).unwrap_or_default()
    }

    /// Allocations that went to the system allocator because no chunk could take them.
    pub fn fallbacks(&self) -> usize {
        self.fallbacks
    }

    /// Live allocations in all chunks.
    pub fn live(&self) -> usize {
        self.chunks().iter().map(Bump::live).sum()
    }

    /// The index of the chunk owning `addr`, the current one first.
    fn owner(&self, addr: usize) -> Option<usize> {
        if self.chunks.get(self.current).is_some_and(|c| c.owns(addr)) {
            return Some(self.current);
        }
        self.chunks().iter().position(|c| c.owns(addr))
    }

    /// Allocates `layout` from the current chunk, else a larger chunk with nothing live, else a
    /// new chunk, else any chunk with nothing live, else the system allocator.
    ///
    /// # Safety
    ///
    /// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
    #[inline]
    pub unsafe fn alloc(&mut self, layout: Layout) -> *mut u8 {
        if let (Some(c), Some(block)) = (
            self.chunks.get_mut(self.current),
            self.blocks.get(self.current),
        ) && let Some(addr) = c.alloc(layout.size(), layout.align())
        {
            return block.wrapping_add(addr - c.base());
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { self.alloc_slow(layout) }
    }

    /// The pointer to `addr` in chunk `i`, derived from the chunk's block.
    fn pointer(&self, i: usize, addr: usize) -> *mut u8 {
        match (self.chunks.get(i), self.blocks.get(i)) {
            (Some(c), Some(block)) => block.wrapping_add(addr.wrapping_sub(c.base())),
            _ => std::ptr::null_mut(),
        }
    }

    /// [`Arena::alloc`] when the current chunk is full: another chunk, a new one, the system.
    ///
    /// # Safety
    ///
    /// As [`Arena::alloc`].
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&mut self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // A chunk with nothing live is empty (its top is back at 0). Moving on goes to a larger
        // chunk, made if need be, so the chunks grow until one holds a whole call.
        let current = self.chunks.get(self.current).map_or(0, Bump::capacity);
        if let Some(i) = self.largest_empty()
            && self.chunks.get(i).is_some_and(|c| c.capacity() > current)
            && let Some(addr) = self.chunks.get_mut(i).and_then(|c| c.alloc(size, align))
        {
            self.current = i;
            return self.pointer(i, addr);
        }
        if let Some(addr) = self.grow(size, align) {
            return self.pointer(self.current, addr);
        }
        // No room for a new chunk: any empty chunk that fits.
        if let Some(i) = self.largest_empty()
            && let Some(addr) = self.chunks.get_mut(i).and_then(|c| c.alloc(size, align))
        {
            self.current = i;
            return self.pointer(i, addr);
        }
        self.fallbacks = self.fallbacks.wrapping_add(1);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    /// The largest chunk with nothing live.
    fn largest_empty(&self) -> Option<usize> {
        self.chunks()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.live() == 0)
            .max_by_key(|(_, c)| c.capacity())
            .map(|(i, _)| i)
    }

    /// Takes a new chunk (twice the largest, or big enough for `size` bytes at `align`) and
    /// allocates from it.
    fn grow(&mut self, size: usize, align: usize) -> Option<usize> {
        if self.count >= MAX_CHUNKS {
            return None;
        }
        let total: usize = self.chunks().iter().map(Bump::capacity).sum();
        let largest = self
            .chunks()
            .iter()
            .map(Bump::capacity)
            .max()
            .unwrap_or(FIRST_CHUNK / 2);
        let need = size.checked_add(align)?.checked_next_power_of_two()?;
        let cap = largest.checked_mul(2)?.max(need);
        if total.checked_add(cap)? > MAX_TOTAL {
            return None;
        }
        let block = Layout::from_size_align(cap, CHUNK_ALIGN).ok()?;
        // SAFETY: `cap` is at least `FIRST_CHUNK`, never zero.
        let base = unsafe { System.alloc(block) };
        if base.is_null() {
            return None;
        }
        let (Some(slot), Some(b)) = (
            self.chunks.get_mut(self.count),
            self.blocks.get_mut(self.count),
        ) else {
            // SAFETY: just allocated with `block`, handed out to no one.
            unsafe { System.dealloc(base, block) };
            return None;
        };
        *slot = Bump::new(base as usize, cap);
        *b = base;
        self.current = self.count;
        self.count += 1;
        slot.alloc(size, align)
    }

    /// Frees `ptr` in the chunk owning it, else in the system allocator.
    ///
    /// # Safety
    ///
    /// As [`GlobalAlloc::dealloc`]: `ptr` came from this arena with `layout`.
    #[inline]
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        if let Some(c) = self.chunks.get_mut(self.current)
            && c.owns(ptr as usize)
        {
            c.free(ptr as usize, layout.size());
            return;
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { self.dealloc_slow(ptr, layout) }
    }

    /// [`Arena::dealloc`] of a pointer outside the current chunk.
    ///
    /// # Safety
    ///
    /// As [`Arena::dealloc`].
    #[inline(never)]
    unsafe fn dealloc_slow(&mut self, ptr: *mut u8, layout: Layout) {
        match self
            .owner(ptr as usize)
            .and_then(|i| self.chunks.get_mut(i))
        {
            Some(c) => c.free(ptr as usize, layout.size()),
            // SAFETY: not in any chunk, so the system allocator handed it out with `layout`.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    /// Resizes in place when the chunk allows it, else moves the bytes to a new allocation.
    ///
    /// # Safety
    ///
    /// As [`GlobalAlloc::realloc`]: `ptr` came from this arena with `layout`, `new_size` is not
    /// zero and rounded up to `layout.align()` does not overflow `isize`.
    #[inline(never)]
    pub unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(i) = self.owner(ptr as usize) else {
            // SAFETY: not in any chunk, so the system allocator handed it out with `layout`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        if self
            .chunks
            .get_mut(i)
            .is_some_and(|c| c.resize_in_place(ptr as usize, layout.size(), new_size))
        {
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `new_size` is not zero (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both are live and distinct allocations (the old one is still counted, so
            // the new one cannot overlap it), each at least `min` bytes long.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            if let Some(c) = self.chunks.get_mut(i) {
                c.free(ptr as usize, layout.size());
            }
        }
        new
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for (c, b) in self.chunks.iter().zip(self.blocks).take(self.count) {
            if let Ok(block) = Layout::from_size_align(c.capacity(), CHUNK_ALIGN) {
                // SAFETY: each chunk's block came from `System` with this layout, once.
                unsafe { System.dealloc(b, block) };
            }
        }
    }
}

/// The arena as a global allocator, for single-threaded `wasm32`.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub struct ArenaAlloc(std::cell::UnsafeCell<Arena>);

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl ArenaAlloc {
    /// An arena with no chunk yet.
    pub const fn new() -> Self {
        Self(std::cell::UnsafeCell::new(Arena::new()))
    }
}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
impl Default for ArenaAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: wasm32 without atomics has one thread; nothing else can reach the cell.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for ArenaAlloc {}

// SAFETY: each call has the cell to itself (one thread; `Arena` calls only `System`, which does
// not call back), and `Arena` keeps the `GlobalAlloc` contract (see the module invariants).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl GlobalAlloc for ArenaAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: exclusive access (above); the caller's contract passed on.
        unsafe { (*self.0.get()).alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe { (*self.0.get()).dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { (*self.0.get()).realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: usize = 0x1000;

    #[test]
    fn bumps_and_counts() {
        let mut b = Bump::new(BASE, 100);
        assert_eq!(b.alloc(10, 1), Some(BASE));
        assert_eq!(b.alloc(10, 1), Some(BASE + 10));
        assert_eq!((b.live(), b.used()), (2, 20));
        assert!(b.owns(BASE) && b.owns(BASE + 99));
        assert!(!b.owns(BASE + 100) && !b.owns(BASE - 1));
        assert!(!Bump::EMPTY.owns(0));
    }

    #[test]
    fn resets_only_when_nothing_is_live() {
        let mut b = Bump::new(BASE, 100);
        let a = b.alloc(10, 1).unwrap();
        let c = b.alloc(10, 1).unwrap();
        let d = b.alloc(10, 1).unwrap();
        // Freeing from the middle keeps the top: `d` is still live above it.
        b.free(c, 10);
        assert_eq!((b.live(), b.used()), (2, 30));
        b.free(a, 10);
        assert_eq!((b.live(), b.used()), (1, 30));
        // The next allocation goes above `d`, never over it.
        let e = b.alloc(5, 1).unwrap();
        assert_eq!(e, d + 10);
        b.free(d, 10);
        assert_eq!((b.live(), b.used()), (1, 35));
        b.free(e, 5);
        assert_eq!((b.live(), b.used()), (0, 0));
        assert_eq!(b.alloc(1, 1), Some(BASE));
    }

    #[test]
    fn last_allocation_is_taken_back_at_once() {
        let mut b = Bump::new(BASE, 100);
        let a = b.alloc(10, 1).unwrap();
        let c = b.alloc(20, 1).unwrap();
        b.free(c, 20);
        assert_eq!((b.live(), b.used()), (1, 10));
        assert_eq!(b.alloc(4, 1), Some(a + 10));
    }

    #[test]
    fn aligns() {
        let mut b = Bump::new(BASE + 1, 200);
        let a = b.alloc(3, 8).unwrap();
        assert_eq!(a % 8, 0);
        assert!(a > BASE);
        let c = b.alloc(1, 64).unwrap();
        assert_eq!(c % 64, 0);
        assert!(c >= a + 3);
        assert_eq!(b.alloc(1, 3), None, "not a power of two");
        assert_eq!(b.alloc(1, 0), None);
    }

    #[test]
    fn zero_sized_allocations_take_a_byte() {
        let mut b = Bump::new(BASE, 100);
        let a = b.alloc(0, 1).unwrap();
        let c = b.alloc(0, 1).unwrap();
        assert_ne!(a, c);
        // `a` is not the last allocation, so it cannot grow over `c`.
        assert!(!b.resize_in_place(a, 0, 2));
    }

    #[test]
    fn grows_the_last_allocation_in_place() {
        let mut b = Bump::new(BASE, 100);
        let a = b.alloc(10, 1).unwrap();
        assert!(b.resize_in_place(a, 10, 40));
        assert_eq!(b.used(), 40);
        assert!(b.resize_in_place(a, 40, 100));
        assert!(!b.resize_in_place(a, 100, 101), "past the region");
        assert!(b.resize_in_place(a, 100, 8));
        assert_eq!(b.used(), 8, "shrinking the last gives the bytes back");
        let c = b.alloc(10, 1).unwrap();
        assert!(!b.resize_in_place(a, 8, 9), "not the last any more");
        assert!(
            b.resize_in_place(a, 8, 4),
            "shrinking in place always works"
        );
        assert_eq!(b.used(), 18);
        b.free(a, 4);
        assert_eq!((b.live(), b.used()), (1, 18));
        assert_eq!(c, BASE + 8);
    }

    #[test]
    fn exhaustion_and_overflow() {
        let mut b = Bump::new(BASE, 16);
        assert!(b.alloc(16, 1).is_some());
        assert_eq!(b.alloc(1, 1), None);
        let mut high = Bump::new(usize::MAX - 8, 8);
        assert_eq!(high.alloc(4, 16), None, "aligning overflows");
        assert_eq!(high.alloc(usize::MAX, 1), None);
        assert!(!high.resize_in_place(usize::MAX - 8, 0, usize::MAX));
    }

    /// Writes a pattern over each live allocation and checks it is intact: overlapping
    /// allocations would overwrite each other.
    struct Checked {
        arena: Arena,
        live: Vec<(*mut u8, Layout, u8)>,
        tag: u8,
    }

    impl Checked {
        fn new() -> Self {
            Self {
                arena: Arena::new(),
                live: Vec::new(),
                tag: 0,
            }
        }

        fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
            let layout = Layout::from_size_align(size, align).unwrap();
            let p = unsafe { self.arena.alloc(layout) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            self.tag = self.tag.wrapping_add(1);
            unsafe { std::ptr::write_bytes(p, self.tag, size) };
            self.live.push((p, layout, self.tag));
            p
        }

        fn free(&mut self, i: usize) {
            let (p, layout, _) = self.live.swap_remove(i);
            unsafe { self.arena.dealloc(p, layout) };
        }

        fn realloc(&mut self, i: usize, new_size: usize) -> *mut u8 {
            let (p, layout, tag) = self.live[i];
            let q = unsafe { self.arena.realloc(p, layout, new_size) };
            assert!(!q.is_null());
            let kept = layout.size().min(new_size);
            let bytes = unsafe { std::slice::from_raw_parts(q, kept) };
            assert!(bytes.iter().all(|b| *b == tag), "realloc kept the bytes");
            unsafe { std::ptr::write_bytes(q, tag, new_size) };
            self.live[i] = (
                q,
                Layout::from_size_align(new_size, layout.align()).unwrap(),
                tag,
            );
            q
        }

        fn check(&self) {
            for (p, layout, tag) in &self.live {
                let bytes = unsafe { std::slice::from_raw_parts(*p, layout.size()) };
                assert!(bytes.iter().all(|b| b == tag), "allocation overwritten");
            }
        }

        fn free_all(&mut self) {
            while !self.live.is_empty() {
                self.free(self.live.len() - 1);
            }
        }
    }

    #[test]
    fn a_call_pattern_reuses_the_chunk() {
        let mut c = Checked::new();
        for _ in 0..3 {
            // Input, then results growing by doubling, interleaved with short-lived values.
            let input = c.alloc(500, 1);
            let mut v = c.alloc(16, 8);
            for n in [32, 64, 128, 256] {
                let tmp = c.alloc(24, 8);
                c.check();
                let i = c.live.iter().position(|(p, ..)| *p == tmp).unwrap();
                c.free(i);
                let i = c.live.iter().position(|(p, ..)| *p == v).unwrap();
                v = c.realloc(i, n);
            }
            assert!(!input.is_null());
            c.check();
            c.free_all();
            assert_eq!(c.arena.live(), 0);
            assert_eq!(c.arena.chunks().len(), 1);
            assert_eq!(c.arena.chunks()[0].used(), 0, "reset at zero");
        }
        assert_eq!(c.arena.fallbacks(), 0);
    }

    #[test]
    fn full_chunks_take_new_ones_then_fall_back() {
        let mut c = Checked::new();
        // Fill well past `MAX_TOTAL` with live allocations.
        let n = 2 * MAX_TOTAL / 4096;
        for _ in 0..n {
            c.alloc(4096, 16);
        }
        c.check();
        assert_eq!(c.arena.chunks().len(), MAX_CHUNKS - 1);
        let total: usize = c.arena.chunks().iter().map(Bump::capacity).sum();
        assert!(total <= MAX_TOTAL);
        assert!(c.arena.fallbacks() > 0);
        // Growing a chunk's allocation past its chunk moves it (to the system allocator).
        let i = c.live.len() / 2;
        c.realloc(i, 3 * MAX_TOTAL);
        c.check();
        // Frees are routed to the right owner; every chunk resets.
        c.free_all();
        assert_eq!(c.arena.live(), 0);
        assert!(c.arena.chunks().iter().all(|b| b.used() == 0));
    }

    #[test]
    fn a_pinned_chunk_does_not_stop_the_others() {
        let mut c = Checked::new();
        let pinned = c.alloc(8, 8);
        // Fill the first chunk, then the next calls go to another chunk.
        for _ in 0..(FIRST_CHUNK / 1024) {
            c.alloc(1024, 8);
        }
        let pin = c.live.remove(0);
        assert_eq!(pin.0, pinned);
        c.free_all();
        assert_eq!(c.arena.chunks()[0].live(), 1);
        let before = c.arena.chunks().len();
        for _ in 0..3 {
            for _ in 0..(FIRST_CHUNK / 1024) {
                c.alloc(1024, 8);
            }
            c.check();
            c.free_all();
        }
        assert_eq!(c.arena.chunks().len(), before, "reused, not grown");
        assert_eq!(c.arena.fallbacks(), 0);
        c.live.push(pin);
        c.check();
        c.free_all();
        assert_eq!(c.arena.live(), 0);
    }

    #[test]
    fn calls_settle_in_one_chunk() {
        let mut c = Checked::new();
        let call = |c: &mut Checked| {
            for _ in 0..300 {
                c.alloc(1024, 8);
            }
            c.check();
            let chunks: Vec<usize> = c
                .live
                .iter()
                .filter_map(|(p, ..)| c.arena.owner(*p as usize))
                .collect();
            c.free_all();
            chunks
        };
        for _ in 0..4 {
            call(&mut c);
        }
        let grown = c.arena.chunks().len();
        for _ in 0..3 {
            let chunks = call(&mut c);
            assert_eq!(chunks.len(), 300, "all in chunks");
            assert!(chunks.iter().all(|i| *i == chunks[0]), "all in one chunk");
        }
        assert_eq!(c.arena.chunks().len(), grown);
        assert_eq!(c.arena.live(), 0);
        assert_eq!(c.arena.fallbacks(), 0);
    }

    #[test]
    fn large_alignment_and_large_requests() {
        let mut c = Checked::new();
        c.alloc(10, 4096);
        c.alloc(FIRST_CHUNK * 3, 8);
        c.alloc(1, 1);
        c.check();
        assert_eq!(c.arena.fallbacks(), 0);
        c.free_all();
        assert_eq!(c.arena.live(), 0);
    }
}
