//! The `ductor` binary: parses the command line and runs it (see `ductor::cli`).

fn main() {
    let code = match ductor::cli::main_with_args(std::env::args().collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
