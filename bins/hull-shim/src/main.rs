//! hull-shim: see the library (`hull_shim::run`).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let dir = match std::env::args_os().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            eprintln!("usage: hull-shim CONTAINER-DIR (started by hulld)");
            return std::process::ExitCode::from(2);
        }
    };
    std::process::ExitCode::from(hull_shim::run(&dir))
}
