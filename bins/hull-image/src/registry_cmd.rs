//! registry subcommands (placeholder until that work lands).

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Placeholder.
    #[command(name = "registry-placeholder", hide = true)]
    Placeholder,
}

pub fn run(_cmd: Cmd, _ctx: &crate::Ctx) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
