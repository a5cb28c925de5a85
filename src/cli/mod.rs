//! The `ductor` command line: permissive dispatch (ops spec §18.1) onto run, status, stop,
//! restart and help.

pub mod logging;
