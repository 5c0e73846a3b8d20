//! The servers whose issues have not landed: `ping` works, any other verb is
//! sent to the server, which answers "unsupported".

use clap::Args;
use protocol::placeholder::{PendingRequest, PendingResponse};
use protocol::Protocol;
use std::path::Path;

#[derive(Args)]
pub struct PendingCmd {
    /// `ping`, or any verb (answered "unsupported" until this server is built).
    pub verb: String,
    /// The verb's arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run<P>(root: &Path, cmd: PendingCmd) -> anyhow::Result<()>
where
    P: Protocol<Request = PendingRequest, Response = PendingResponse>,
{
    if cmd.verb == "ping" {
        return super::ping::<P>(root);
    }
    let mut c = super::client::<P>(root)?;
    match c.call(
        PendingRequest::Verb {
            name: cmd.verb,
            args: cmd.args,
        },
        None,
    )? {}
}
