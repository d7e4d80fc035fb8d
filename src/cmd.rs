//! One module per subcommand.

pub(crate) mod bootstrap;
pub(crate) mod certs;
pub(crate) mod completion;
pub(crate) mod echo;
pub(crate) mod install;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod serve;
pub(crate) mod sign;
pub(crate) mod status;
pub(crate) mod translate;
pub(crate) mod up;
pub(crate) mod verify;
pub(crate) mod verify_signature;
pub(crate) mod version;

/// Output format of commands that print data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}
