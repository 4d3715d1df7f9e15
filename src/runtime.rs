//! The monoio runtime every thread runs: io_uring or epoll, as `[httpServer] driver` says.
//! A leaf, so that the cores (`net`) and the cluster thread build theirs the same way.

use std::io;

use crate::config::Driver;

/// The runtime type of every thread: io_uring or epoll, chosen at start.
pub(crate) type Runtime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// A runtime on `driver`, with timers. `Auto` is io_uring where the kernel allows it and
/// epoll otherwise (also when `MONOIO_FORCE_LEGACY_DRIVER=1`); `IoUring` fails where it is
/// refused.
pub(crate) fn build(driver: Driver) -> io::Result<Runtime> {
    match driver {
        Driver::Auto => monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .with_entries(4096)
            .build(),
        Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .with_entries(4096)
            .build()
            .map(Into::into),
        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(Into::into),
    }
}
