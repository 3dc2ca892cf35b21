//! Server configuration: one clap struct, every flag also an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// ticksync server settings. Every flag can also be set with the environment variable
/// named in its help; a flag wins over the variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "ticksync-server", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on (HTTP, the demo client and the WebSocket endpoint `/ws`).
    #[arg(long, env = "TICKSYNC_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Simulation ticks (and snapshots) per second in every lobby.
    #[arg(long, env = "TICKSYNC_TICK_RATE", default_value_t = 30,
          value_parser = clap::value_parser!(u16).range(1..=120))]
    pub tick_rate: u16,

    /// The largest lobby a CreateLobby may ask for.
    #[arg(long, env = "TICKSYNC_MAX_PLAYERS_PER_LOBBY", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(1..=250))]
    pub max_players_per_lobby: u8,

    /// Size of the lobbies that QuickJoin creates when none has room.
    #[arg(long, env = "TICKSYNC_QUICK_LOBBY_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(1..=250))]
    pub quick_lobby_size: u8,

    /// Most simultaneous connections (HTTP and WebSocket); further ones wait in the
    /// kernel's accept queue.
    #[arg(long, env = "TICKSYNC_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most lobbies at once.
    #[arg(long, env = "TICKSYNC_MAX_LOBBIES", default_value_t = 2_000)]
    pub max_lobbies: usize,

    /// How long an empty lobby stays open before it closes (e.g. "30s", "500ms").
    #[arg(long, env = "TICKSYNC_EMPTY_LOBBY_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub empty_lobby_grace: Duration,

    /// How long a client may take to send Hello after the WebSocket opens.
    #[arg(long, env = "TICKSYNC_HELLO_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub hello_timeout: Duration,

    /// How long the server waits for a client to accept one message before it drops
    /// the client as too slow.
    #[arg(long, env = "TICKSYNC_WRITE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// Most simultaneous connections from one IP address.
    #[arg(long, env = "TICKSYNC_MAX_CONNECTIONS_PER_IP", default_value_t = 1_024)]
    pub max_connections_per_ip: usize,

    /// How long a client may take to send its HTTP request (the WebSocket handshake).
    #[arg(long, env = "TICKSYNC_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// A client that sends nothing at all (not even a pong) for this long is closed.
    #[arg(long, env = "TICKSYNC_IDLE_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// How often the server pings each client (for RTT and to notice dead links).
    #[arg(long, env = "TICKSYNC_PING_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// How long a player whose connection dropped keeps its place (entity, score, lobby)
    /// for a resume with its session token.
    #[arg(long, env = "TICKSYNC_RESUME_GRACE", default_value = "15s", value_parser = parse_duration)]
    pub resume_grace: Duration,

    /// Origins allowed to open the WebSocket (comma-separated, e.g.
    /// "https://game.example"). Empty: any origin.
    #[arg(long, env = "TICKSYNC_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Secret for signed join tokens. When set, every player needs a token from the
    /// game's backend (`/ws?token=...`, see PROTOCOL.md).
    #[arg(long, env = "TICKSYNC_JOIN_SECRET", hide_env_values = true)]
    pub join_secret: Option<String>,

    /// Bearer token(s) for the admin API and the /monitor page (comma-separated). The
    /// admin API is off unless one is set.
    #[arg(
        long,
        env = "TICKSYNC_ADMIN_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_token: Vec<String>,

    /// Kernel send buffer per connection, in bytes (0: the kernel's default). Bounds
    /// what a client that stops reading can make the server hold.
    #[arg(long, env = "TICKSYNC_SOCKET_SEND_BUFFER", default_value_t = 64 * 1024)]
    pub socket_send_buffer: usize,

    /// How long shutdown waits for sessions and lobbies to finish.
    #[arg(long, env = "TICKSYNC_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        // The defaults are the clap defaults; parsing an empty command line cannot fail.
        Self::parse_from(["ticksync-server"])
    }
}

impl Config {
    /// The tick period.
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.tick_rate.max(1)))
    }
}

/// Parses "30s", "1.5s", "500ms", "2m" or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 30s or 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("bad duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::default();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.tick_rate, 30);
        assert_eq!(c.max_players_per_lobby, 64);
        assert_eq!(c.empty_lobby_grace, Duration::from_secs(30));
        assert_eq!(c.resume_grace, Duration::from_secs(15));
        assert!(c.allowed_origins.is_empty() && c.join_secret.is_none());
    }
}
