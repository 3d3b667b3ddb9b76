//! Writing workflows: scaffolds (`crm workflow new`), the SDKs and WIT vendored into a
//! workflow folder, building its components in Rust, Python or JavaScript, and running the
//! whole workflow locally against fixtures (`crm workflow test`).

pub mod cases;
pub mod local_run;
pub mod scaffold;
pub mod toolchain;
pub mod vendor;

/// The languages a step can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    pub fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}
