//! The monoio runtime every thread runs: io_uring or epoll, as `[httpServer] driver` says.
//! A leaf, so that the cores (`net`) and the cluster thread build theirs the same way.

use std::io;
use std::sync::OnceLock;

use crate::config::Driver;

/// The runtime type of every thread: io_uring or epoll, chosen at start.
pub(crate) type Runtime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// Submission queue entries of each thread's ring.
const RING_ENTRIES: u32 = 4096;

/// A runtime on `driver`, with timers. `Auto` is io_uring where the kernel allows it and
/// epoll otherwise (also when `MONOIO_FORCE_LEGACY_DRIVER=1`); `IoUring` fails where it is
/// refused.
pub(crate) fn build(driver: Driver) -> io::Result<Runtime> {
    match driver {
        Driver::Auto => monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .with_entries(RING_ENTRIES)
            .uring_builder(ring_setup())
            .build(),
        Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .with_entries(RING_ENTRIES)
            .uring_builder(ring_setup())
            .build()
            .map(Into::into),
        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(Into::into),
    }
}

/// How each ring is set up: with `IORING_SETUP_COOP_TASKRUN` (and `TASKRUN_FLAG`) where the
/// kernel has it (5.19 and later). A socket read submitted before its data arrives completes
/// through task work; by default the kernel interrupts the core to run it at once, while the
/// sending CPU still holds the socket's lock, and the read spins on that lock. Cooperative task
/// run waits until the core next enters the kernel, as an epoll loop does: pinned, renew went
/// from 85k to 141k requests/s with fetch unchanged (`docs/PERFORMANCE.md`).
fn ring_setup() -> io_uring::Builder {
    static COOP: OnceLock<bool> = OnceLock::new();
    let coop = *COOP.get_or_init(|| {
        let mut b: io_uring::Builder = io_uring::IoUring::builder();
        b.setup_coop_taskrun().setup_taskrun_flag();
        let ring: io::Result<io_uring::IoUring> = b.build(8);
        let supported = ring.is_ok();
        // Said only where io_uring itself works: elsewhere the epoll fallback says enough.
        if !supported && io_uring::IoUring::new(8).is_ok() {
            tracing::info!(
                "the kernel has no cooperative io_uring task run; rings set up without it"
            );
        }
        supported
    });
    let mut b: io_uring::Builder = io_uring::IoUring::builder();
    if coop {
        b.setup_coop_taskrun().setup_taskrun_flag();
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_is_set_up_where_the_kernel_has_io_uring() {
        // Where the kernel refuses io_uring altogether (a seccomp profile), there is nothing to
        // check; elsewhere the chosen setup must build a ring.
        if io_uring::IoUring::new(8).is_ok() {
            let ring: io::Result<io_uring::IoUring> = ring_setup().build(8);
            assert!(ring.is_ok());
        }
    }
}
