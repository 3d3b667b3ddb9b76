//! One file per subcommand.

pub mod migrate;
