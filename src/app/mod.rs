//! Daemon wiring: builds the components from the configuration and runs them
//! until shutdown.

pub mod directory;
