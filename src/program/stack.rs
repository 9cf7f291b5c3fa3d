//! Room on the stack for the walks over expressions that follow `let`s: compiling and
//! evaluating recurse once per level, and a valid policy may nest `check::MAX_DEPTH` levels.
//!
//! How much stack one level takes depends on the build (an unoptimised frame is many times an
//! optimised one), and how much a thread has depends on who made it (tokio's workers, a
//! caller's own thread, a test harness). Rather than size every thread for the worst case,
//! the walks move to a fresh segment of heap-allocated stack when the current one runs low.

/// The stack a walk must still have before it descends further without looking again: enough
/// for [`LEVELS_PER_CHECK`] levels of the largest (unoptimised) frames and the operation at
/// the bottom.
const RED_ZONE: usize = 512 * 1024;

/// The size of each new segment.
const SEGMENT: usize = 8 * 1024 * 1024;

/// How many levels a hot walk (the evaluator) descends between two looks at the stack.
pub(crate) const LEVELS_PER_CHECK: u32 = 16;

/// Runs `f`, on a new stack segment when less than the red zone is left on this one.
#[inline]
pub(crate) fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}
