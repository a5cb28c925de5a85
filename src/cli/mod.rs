//! The `ductor` command line.
