/// mimalloc instead of glibc malloc: freed memory goes back to the system shortly after a burst
/// of connections closes (glibc kept hundreds of MB), and per-connection buffers cost only the
/// pages they touch.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Its options are set before Rust's runtime makes the first allocation.
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = lbha::daemon::tune_allocator;

fn main() -> std::process::ExitCode {
    lbha::cli::main()
}
