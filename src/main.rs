//! The `ductor` binary: parses the command line and runs it (see `ductor::cli`).

fn main() {
    ductor::cli::pipe::exit_quietly_on_closed_pipe();
    let code = match ductor::cli::main_with_args(std::env::args().collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
