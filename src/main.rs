/// mimalloc instead of glibc malloc: freed memory goes back to the system shortly after a burst
/// of connections closes (glibc kept hundreds of MB), and per-connection buffers cost only the
/// pages they touch.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lbha::cli::main()
}
