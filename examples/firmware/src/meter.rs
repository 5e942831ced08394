//! Instruction counting and stack measurement on the QEMU mps2-an386 board.
//!
//! Instructions: QEMU runs with `-icount shift=5`, so each guest instruction advances virtual time by 32 ns, and
//! SysTick, clocked by the 25 MHz core clock, advances 0.8 ticks per instruction. SysTick counts down from a 24-bit
//! reload; its exception counts the wraps, which extends it to 64 bits. [`calibrate`] runs an assembly loop of a
//! known instruction count and returns the measured ticks for it, so the ratio is checked on every run rather than
//! assumed.
//!
//! Stack: the region between `_stack_end` (top of .bss) and the current stack pointer is painted with
//! [`PAINT`] before a phase; afterwards the lowest word that no longer holds the paint is the high-water mark.
//! cortex-m-rt's `paint-stack` feature paints the whole stack once at reset, which gives the whole-run peak.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00FF_FFFF;
/// cortex-m-rt's `STACK_PAINT_VALUE`.
pub const PAINT: u32 = 0xCCCC_CCCC;
/// Painting stops this far below the stack pointer of the painting function, so its own frame stays intact.
const PAINT_GUARD: usize = 64;

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Starts SysTick on the core clock, free running, with its wrap interrupt.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // `syst` is dropped here, which does not stop the counter: it runs for the rest of the program.
}

/// Ticks since [`start`].
#[inline(never)]
pub fn ticks() -> u64 {
    loop {
        let w1 = WRAPS.load(Ordering::Relaxed);
        let val = SYST::get_current();
        let w2 = WRAPS.load(Ordering::Relaxed);
        if w1 == w2 {
            return u64::from(w1) * u64::from(RELOAD + 1) + u64::from(RELOAD - val);
        }
    }
}

/// Instructions per tick as a ratio, measured by [`calibrate`].
#[derive(Clone, Copy)]
pub struct Calibration {
    /// Instructions executed by the calibration loop.
    pub instructions: u64,
    /// Ticks measured for it.
    pub ticks: u64,
}

impl Calibration {
    /// Converts a tick count into instructions.
    pub fn instructions(&self, ticks: u64) -> u64 {
        (ticks * self.instructions + self.ticks / 2) / self.ticks
    }
}

/// Times `n` iterations of a two-instruction loop (`subs`, `bne`): 2n instructions plus the few around it.
pub fn calibrate(n: u32) -> Calibration {
    let t0 = ticks();
    // SAFETY: a register-only countdown loop; touches no memory.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) n => _,
            options(nomem, nostack),
        );
    }
    let t1 = ticks();
    Calibration {
        instructions: 2 * u64::from(n),
        ticks: t1 - t0,
    }
}

/// One measured call: its result, the ticks it took and the stack high-water mark it reached.
pub struct Measured<T> {
    /// What `f` returned.
    pub out: T,
    /// Ticks spent in `f`.
    pub ticks: u64,
    /// Deepest stack use during `f`, in bytes from the top of the stack (so it includes the callers' frames).
    pub stack: usize,
    /// Stack depth of the caller of [`measure`]: `stack − base` is what the call itself used.
    pub base: usize,
}

/// Runs `f` on freshly painted stack and measures it. Never inlined, so the frames of `f` (and whatever LTO inlines
/// into it) lie below the painted boundary rather than in the caller's frame.
#[inline(never)]
pub fn measure<T>(f: impl FnOnce() -> T) -> Measured<T> {
    let base = depth();
    repaint();
    let t0 = ticks();
    let out = run(f);
    let t1 = ticks();
    Measured {
        out,
        ticks: t1 - t0,
        stack: peak(),
        base,
    }
}

#[inline(never)]
fn run<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Current stack depth, in bytes from the top of the stack.
#[inline(never)]
pub fn depth() -> usize {
    stack_top() - cortex_m::register::msp::read() as usize
}

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

fn stack_top() -> usize {
    core::ptr::addr_of!(_stack_start) as usize
}

fn stack_bottom() -> usize {
    core::ptr::addr_of!(_stack_end) as usize
}

/// Repaints the free stack below the caller, so that [`peak`] afterwards reports the deepest point reached since.
#[inline(never)]
pub fn repaint() {
    let sp = cortex_m::register::msp::read() as usize;
    let end = (sp - PAINT_GUARD) & !3;
    let mut p = stack_bottom();
    while p < end {
        // SAFETY: [stack_bottom, sp − guard) is the unused part of the stack: nothing lives there.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Deepest stack use, in bytes from the top of the stack, since the last paint (reset or [`repaint`]).
#[inline(never)]
pub fn peak() -> usize {
    let mut p = stack_bottom();
    let top = stack_top();
    while p < top {
        // SAFETY: reads of the stack region, which is RAM; reading painted or live words is harmless.
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PAINT {
            break;
        }
        p += 4;
    }
    top - p
}
