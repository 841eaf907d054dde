fn main() -> std::process::ExitCode {
    lbha::cli::main()
}
