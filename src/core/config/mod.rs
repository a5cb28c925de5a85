//! Typed models of the config file.
