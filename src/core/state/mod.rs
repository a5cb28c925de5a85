//! Typed models of the JSON state files.
