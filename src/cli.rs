//! The command line: `serve` (default) and `decode`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::protocol::Transport;

/// trackgate: tracker protocols in, partner-permissioned positions out.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve(ServeArgs),
    /// Decode device bytes offline exactly as the server would, printing one
    /// JSON line per frame with its positions and the reply bytes.
    Decode(DecodeArgs),
    /// Virtual Teltonika devices against a running gateway: plausible routes,
    /// acks honoured like a real device; prints acked records/s and ack
    /// latency percentiles.
    Simulate(crate::simulate::SimOptions),
    /// Access-log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// Config file (TOML); default: the embedded config/trackgate.toml.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the database and generated secrets.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address for health, metrics and the API.
    #[arg(long, global = true)]
    pub http: Option<std::net::SocketAddr>,
    /// Replace a protocol's listen address (TCP and UDP), e.g.
    /// `--listen teltonika=0.0.0.0:5027`. Repeatable.
    #[arg(long = "listen", value_name = "PROTOCOL=ADDR", global = true)]
    pub listen: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Protocol registry name, e.g. `teltonika`.
    #[arg(long)]
    pub protocol: String,
    /// How the bytes arrived: a TCP stream or UDP datagrams.
    #[arg(long, value_enum, default_value = "tcp")]
    pub transport: TransportArg,
    /// Hex messages, in order, as one device session: each one TCP chunk
    /// or UDP datagram (spaces inside allowed). Without any, stdin is read:
    /// one hex chunk per line, or raw bytes with --raw.
    #[arg(value_name = "HEX")]
    pub messages: Vec<String>,
    /// The same as a positional HEX (kept for scripts written against it).
    #[arg(long)]
    pub hex: Vec<String>,
    /// Read stdin as raw bytes (one TCP chunk) instead of hex lines.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TransportArg {
    Tcp,
    Udp,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Udp => Transport::Udp,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-walk the access log's hash chain in `--data-dir` (default `data`);
    /// exit 1 naming the first broken entry. Prints the head as `ID:HASH`:
    /// keep it outside the server and pass it back with `--expect`.
    Verify {
        /// An earlier head (`ID:HASH`): fail unless that entry is still in
        /// the log unchanged, so entries cut off the end are found.
        #[arg(long)]
        expect: Option<crate::access::verify::Anchor>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_data_dir_reaches_audit_verify() {
        let cli =
            Cli::try_parse_from(["trackgate", "audit", "verify", "--data-dir", "/tmp/x"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Audit {
                command: AuditCommand::Verify { expect: None }
            })
        ));
        assert_eq!(
            cli.serve.data_dir.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
    }
}
