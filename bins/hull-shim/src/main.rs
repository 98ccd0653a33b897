//! hull-shim: see the library (`hull_shim::main_args`).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(hull_shim::main_args(std::env::args_os().skip(1)))
}
