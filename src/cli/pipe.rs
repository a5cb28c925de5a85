//! A closed pipe on stdout or stderr (`ductor --help | head -1`) ends ductor quietly with exit
//! 0, as other Unix tools do, instead of the standard library's "failed printing to stdout"
//! panic.

/// Installs the panic hook that turns a print into a closed pipe into a quiet exit; every other
/// panic goes to the default hook.
pub fn exit_quietly_on_closed_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_closed_pipe_print(message) {
            std::process::exit(0);
        }
        default_hook(info);
    }));
}

/// Whether a panic message is the standard library's failed print into a closed pipe.
fn is_closed_pipe_print(message: &str) -> bool {
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_prints_into_a_closed_pipe_exit_quietly() {
        assert!(is_closed_pipe_print("failed printing to stdout: Broken pipe (os error 32)"));
        assert!(is_closed_pipe_print("failed printing to stderr: Broken pipe (os error 32)"));
        assert!(!is_closed_pipe_print("failed printing to stdout: No space left on device"));
        assert!(!is_closed_pipe_print("index out of bounds"));
    }
}
