//! Server configuration: one clap struct, every flag also an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

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
          value_parser = clap::value_parser!(u16).range(1..=i64::from(ticksync_protocol::limits::MAX_LOBBY_PLAYERS)))]
    pub max_players_per_lobby: u16,

    /// Size of the lobbies that QuickJoin creates when none has room.
    #[arg(long, env = "TICKSYNC_QUICK_LOBBY_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=i64::from(ticksync_protocol::limits::MAX_LOBBY_PLAYERS)))]
    pub quick_lobby_size: u16,

    /// Most simultaneous connections (HTTP and WebSocket). WebSockets over the cap are
    /// told so (close code 1013); /readyz answers 503 at the cap.
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
    /// `https://game.example`). Empty: any origin.
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

    /// Most lobbies one address may have open at once (lobbies it created with
    /// CreateLobby that are still open). Beyond it, CreateLobby is refused
    /// (`Error RateLimited`). Lobbies QuickJoin creates are not counted: it creates only
    /// when every public lobby is full.
    #[arg(long, env = "TICKSYNC_MAX_LOBBIES_PER_IP", default_value_t = 8)]
    pub max_lobbies_per_ip: usize,

    /// Lobbies one address may create with CreateLobby per minute (a token bucket per
    /// address with this burst); beyond it, CreateLobby is refused (`Error RateLimited`).
    #[arg(long, env = "TICKSYNC_LOBBY_CREATES_PER_MINUTE", default_value_t = 20)]
    pub lobby_creates_per_minute: u32,

    /// Share of `--max-lobbies` (percent) kept for lobbies that QuickJoin creates:
    /// CreateLobby is refused (`ServerFull`) once only this share is left, so a newcomer
    /// can always be placed by QuickJoin.
    #[arg(long, env = "TICKSYNC_QUICK_JOIN_RESERVE_PERCENT", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub quick_join_reserve_percent: u8,

    /// How long an empty lobby stays open if it never had two players at once (created
    /// and abandoned), instead of `--empty-lobby-grace`.
    #[arg(long, env = "TICKSYNC_ABANDONED_LOBBY_GRACE", default_value = "3s", value_parser = parse_duration)]
    pub abandoned_lobby_grace: Duration,

    /// Proxies trusted to name the client (comma-separated addresses, e.g. the TLS
    /// proxy's `127.0.0.1`): a connection from one of them is counted, limited and
    /// logged by the last `X-Forwarded-For` address that is not itself a trusted proxy.
    /// Empty: `X-Forwarded-For` is ignored.
    #[arg(long, env = "TICKSYNC_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Failed guesses (wrong admin tokens, unknown join codes, bad join tokens) one
    /// address may make per minute; past them the address is refused for the rest of
    /// the minute (HTTP 429 on the admin API, `Error RateLimited` for join codes).
    #[arg(long, env = "TICKSYNC_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    pub auth_failures_per_minute: u32,

    /// Longest lifetime (expiry minus now) of a single-use join token (one with a nonce);
    /// a longer one is refused, so that remembered nonces stay bounded.
    #[arg(long, env = "TICKSYNC_JOIN_TOKEN_MAX_LIFETIME", default_value = "10m", value_parser = parse_duration)]
    pub join_token_max_lifetime: Duration,

    /// How long a drain (SIGTERM or SIGINT, or `POST /admin/api/drain`) lets players finish: the
    /// node takes no new players and its lobbies leave the cluster's listings at once,
    /// lobbies keep playing until they are empty or this runs out, then everyone still
    /// connected is told `ShuttingDown` (close 1001). 0: close at once.
    #[arg(long, env = "TICKSYNC_DRAIN_TIMEOUT", default_value = "0s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Cluster mode: the Redis that the nodes share their lobbies through, e.g.
    /// `redis://127.0.0.1:6379`. Unset: a single node, no Redis. When set and Redis
    /// cannot be reached at start, the server exits with an error.
    #[arg(long, env = "TICKSYNC_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Cluster mode: the WebSocket URL other nodes send players to, e.g.
    /// `ws://10.0.0.5:8080/ws`. Default: `ws://<the bound address>/ws`.
    #[arg(long, env = "TICKSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Cluster mode: this node's id (1 to 64 of `A-Z a-z 0-9 . _ -`), in logs, `/metrics`
    /// and the directory. Default: `node-` and 12 random hex digits.
    #[arg(long, env = "TICKSYNC_NODE_ID")]
    pub node_id: Option<String>,

    /// Cluster mode: how long a node and its lobbies stay listed without a renewal (it
    /// renews every third of this). A node killed with `kill -9` vanishes from every
    /// listing within it.
    #[arg(long, env = "TICKSYNC_CLUSTER_LEASE", default_value = "3s", value_parser = parse_duration)]
    pub cluster_lease: Duration,

    /// Cluster mode: how long a seat reserved for a player sent to another node
    /// (`Redirect`) stays held; unused, it returns to the lobby.
    #[arg(long, env = "TICKSYNC_RESERVATION_TTL", default_value = "15s", value_parser = parse_duration)]
    pub reservation_ttl: Duration,

    /// Cluster mode: prefix of every Redis key (several clusters can share one Redis).
    #[arg(long, env = "TICKSYNC_REDIS_PREFIX", default_value = "ticksync:")]
    pub redis_prefix: String,

    /// How long shutdown waits for sessions and lobbies to finish.
    #[arg(long, env = "TICKSYNC_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    /// The documented defaults, from the flags' declarations alone: no command line, no
    /// environment (a library call must not read `TICKSYNC_*` or exit the process; only
    /// the binary's `main` parses those).
    fn default() -> Self {
        let command = Self::command().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from(["ticksync-server"])
            .expect("the declared defaults parse (tested)");
        Self::from_arg_matches(&matches).expect("the declared defaults are valid (tested)")
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

    /// Run as a child process (below) with `TICKSYNC_TICK_RATE` set: `Config::default()`
    /// must not see it.
    #[test]
    fn defaults_ignore_the_environment_child() {
        if std::env::var_os("TICKSYNC_DEFAULTS_CHILD").is_some() {
            assert_eq!(Config::default().tick_rate, 30);
        }
    }

    #[test]
    fn defaults_ignore_the_environment() {
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "config::tests::defaults_ignore_the_environment_child",
            ])
            .env("TICKSYNC_DEFAULTS_CHILD", "1")
            .env("TICKSYNC_TICK_RATE", "99")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run the test binary");
        assert!(status.success(), "Config::default() read the environment");
    }
}

/// How the binary logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The command line of `ticksync-server`: the server's [`Config`] plus what only the
/// binary needs.
#[derive(Debug, Clone, Parser)]
#[command(name = "ticksync-server", version, about, long_about = None)]
pub struct Cli {
    /// The server settings.
    #[command(flatten)]
    pub config: Config,

    /// A TOML file of settings (keys are the flag names: `tick_rate = 60`). Precedence:
    /// flag > environment variable > file > default.
    #[arg(long = "config", env = "TICKSYNC_CONFIG")]
    pub config_file: Option<std::path::PathBuf>,

    /// Print the effective settings (secrets hidden) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// The built-in game every lobby plays.
    #[arg(long, env = "TICKSYNC_GAME", value_enum, default_value_t = crate::games::BuiltinGame::Arena)]
    pub game: crate::games::BuiltinGame,

    /// Log format.
    #[arg(long, env = "TICKSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Runtime worker threads (0: one per CPU the process may run on). With one, the
    /// server runs on tokio's single-threaded scheduler, which is cheaper per wake-up
    /// when the process is pinned to one core.
    #[arg(long, env = "TICKSYNC_WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,
}

impl Cli {
    /// Parses `args` (the first is the program name), filling what neither a flag nor an
    /// environment variable set from the `--config` file.
    pub fn load<I, T>(args: I) -> Result<Self, crate::error::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::parser::ValueSource;

        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let matches = Self::command().try_get_matches_from(&args)?;
        let first = Self::from_arg_matches(&matches)?;
        let Some(path) = &first.config_file else {
            return Ok(first);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::error::Error::ConfigFile(format!("cannot read {}: {e}", path.display()))
        })?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| crate::error::Error::ConfigFile(format!("{}: {e}", path.display())))?;
        let command = Self::command();
        let mut extended = args;
        for (key, value) in table {
            let id = key.replace('-', "_");
            let Some(arg) = command.get_arguments().find(|a| a.get_id().as_str() == id) else {
                return Err(crate::error::Error::ConfigFile(format!(
                    "{}: unknown setting {key:?}",
                    path.display()
                )));
            };
            let Some(long) = arg.get_long() else {
                return Err(crate::error::Error::ConfigFile(format!(
                    "{}: {key:?} cannot be set from a file",
                    path.display()
                )));
            };
            if matches.value_source(&id) != Some(ValueSource::DefaultValue)
                && matches.value_source(&id).is_some()
            {
                continue;
            }
            let text = match &value {
                toml::Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
                other => scalar(other),
            };
            extended.push(format!("--{long}={text}").into());
        }
        Ok(Self::try_parse_from(extended)?)
    }
}

/// A Redis URL without its password (`redis://user:secret@host` → `redis://user:(set)@host`).
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:(set)@{host}"),
            None => format!("{scheme}://(set)@{host}"),
        },
        None => url.to_owned(),
    }
}

fn scalar(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

impl Config {
    /// The effective settings as TOML, secrets hidden (`--print-config`).
    pub fn to_toml(&self) -> String {
        let secret = |set: bool| if set { "\"(set)\"" } else { "\"\"" };
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let d = |d: Duration| format!("\"{}ms\"", d.as_millis());
        [
            format!("bind = \"{}\"", self.bind),
            format!("tick_rate = {}", self.tick_rate),
            format!("max_players_per_lobby = {}", self.max_players_per_lobby),
            format!("quick_lobby_size = {}", self.quick_lobby_size),
            format!("max_connections = {}", self.max_connections),
            format!("max_connections_per_ip = {}", self.max_connections_per_ip),
            format!("max_lobbies = {}", self.max_lobbies),
            format!("empty_lobby_grace = {}", d(self.empty_lobby_grace)),
            format!("handshake_timeout = {}", d(self.handshake_timeout)),
            format!("hello_timeout = {}", d(self.hello_timeout)),
            format!("idle_timeout = {}", d(self.idle_timeout)),
            format!("ping_interval = {}", d(self.ping_interval)),
            format!("write_timeout = {}", d(self.write_timeout)),
            format!("resume_grace = {}", d(self.resume_grace)),
            format!("shutdown_timeout = {}", d(self.shutdown_timeout)),
            format!("socket_send_buffer = {}", self.socket_send_buffer),
            format!("max_lobbies_per_ip = {}", self.max_lobbies_per_ip),
            format!(
                "lobby_creates_per_minute = {}",
                self.lobby_creates_per_minute
            ),
            format!(
                "quick_join_reserve_percent = {}",
                self.quick_join_reserve_percent
            ),
            format!("abandoned_lobby_grace = {}", d(self.abandoned_lobby_grace)),
            format!(
                "trusted_proxies = {}",
                list(
                    &self
                        .trusted_proxies
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                )
            ),
            format!(
                "auth_failures_per_minute = {}",
                self.auth_failures_per_minute
            ),
            format!(
                "join_token_max_lifetime = {}",
                d(self.join_token_max_lifetime)
            ),
            format!("drain_timeout = {}", d(self.drain_timeout)),
            format!(
                "redis_url = {:?}",
                self.redis_url
                    .as_deref()
                    .map(redact_url)
                    .unwrap_or_default()
            ),
            format!(
                "public_url = {:?}",
                self.public_url.as_deref().unwrap_or_default()
            ),
            format!(
                "node_id = {:?}",
                self.node_id.as_deref().unwrap_or_default()
            ),
            format!("cluster_lease = {}", d(self.cluster_lease)),
            format!("reservation_ttl = {}", d(self.reservation_ttl)),
            format!("redis_prefix = {:?}", self.redis_prefix),
            format!("allowed_origins = {}", list(&self.allowed_origins)),
            format!("join_secret = {}", secret(self.join_secret.is_some())),
            format!("admin_token = {}", secret(!self.admin_token.is_empty())),
        ]
        .join("\n")
            + "\n"
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = std::env::temp_dir().join(format!("ticksync-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ticksync.toml");
        std::fs::write(
            &path,
            "tick_rate = 20\nmax_lobbies = 7\nallowed_origins = [\"https://a\", \"https://b\"]\nresume-grace = \"2s\"\n",
        )
        .expect("write");
        let file = path.to_string_lossy().into_owned();
        let cli =
            Cli::load(["ticksync-server", "--config", &file, "--max-lobbies", "9"]).expect("loads");
        assert_eq!(cli.config.tick_rate, 20, "from the file");
        assert_eq!(cli.config.max_lobbies, 9, "the flag wins");
        assert_eq!(cli.config.resume_grace, Duration::from_secs(2));
        assert_eq!(cli.config.allowed_origins, ["https://a", "https://b"]);
        assert_eq!(cli.config.max_players_per_lobby, 64, "default");
        std::fs::write(&path, "no_such_setting = 1\n").expect("write");
        assert!(Cli::load(["ticksync-server", "--config", &file]).is_err());
        let printed = Cli::load(["ticksync-server", "--join-secret", "hush"])
            .expect("loads")
            .config
            .to_toml();
        assert!(printed.contains("join_secret = \"(set)\"") && !printed.contains("hush"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
