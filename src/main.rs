use std::process::ExitCode;

fn main() -> ExitCode {
    refaug::cli::main()
}
