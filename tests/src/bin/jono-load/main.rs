//! `jono-load`: Jono under load, beside the ceilings of the disk it runs on, in one run.
//!
//! Not a test (it asserts no figure): it measures, on the same disk and in the same minute, what
//! SQLite (WAL, `synchronous=FULL`) — and, with `--database-url`, Postgres — commits as single-row
//! and 32-row transactions from as many writers as Jono gets clients, then starts its own
//! `jono serve` on a fresh store and measures it over real HTTP and WebSocket connections:
//! durable `SendMessage`s per second, POST → WebSocket frame latency at a given rate, and how a
//! message's and a join and pick's latency change with a conversation's and a queue's history.
//! It prints each figure with its p50/p99 and its ratio to the ceiling (or the baseline); it
//! fails when a call fails. BENCHMARKS.md has the command and the figures:
//!
//!   cargo build --release --locked --bin jono --bin jono-load && target/release/jono-load
//!
//! `ceiling` is the naïve server's transactions, `client` the calls of API.md it makes,
//! `scenarios` what its users do, `figures` the percentiles and the table.

mod ceiling;
mod client;
mod figures;
mod scenarios;
mod sockets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::json;

use figures::{Figure, Samples};
use jono_tests::Server;
use scenarios::{Org, Pace};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Fallible<T> = Result<T, Error>;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "jono-load",
    about = "Jono under load beside the ceilings of its disk (and Postgres), in one run"
)]
struct Args {
    /// The `jono` binary to start; by default the one beside this tool (target/<profile>/jono).
    #[arg(long, env = "JONO_BIN")]
    jono: Option<PathBuf>,
    /// Run Jono on this Postgres (in a fresh schema, dropped afterwards) and measure Postgres's
    /// ceiling too; without it, Jono runs on SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Where the run's temporary folder goes (Jono's data and the SQLite ceilings, side by side).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Keep-alive HTTP clients sending messages, and writers of the ceilings.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds of each timed phase: the throughput run and the WebSocket run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of each ceiling.
    #[arg(long, default_value_t = 5.0)]
    ceiling_seconds: f64,
    /// Conversations the messages are spread over, each watched by its customer's WebSocket.
    #[arg(long, default_value_t = 1000)]
    conversations: usize,
    /// Messages per second in all during the WebSocket run.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// The history figure compares messages 1..SAMPLES of one conversation with SAMPLES
    /// messages around this one.
    #[arg(long, default_value_t = 3000)]
    history: usize,
    /// The queue figure compares join + pick in a fresh queue with the same in a queue that has
    /// served this many customers (all left active).
    #[arg(long, default_value_t = 1000)]
    served: usize,
    /// Samples of each history figure.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// `jono serve` nodes on the one Postgres (`--database-url`): with 2, client k sends through
    /// node k mod 2 and each conversation's WebSocket reads from the other node (with an even
    /// number of clients and conversations), so every live figure crosses nodes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Given to every node as `JONO_NATS_URL` (what several nodes share besides Postgres).
    /// Several nodes need NATS: without it, `--nodes 2` or more starts a throwaway
    /// `nats-server` on loopback (Debian's package).
    #[arg(long)]
    nats_url: Option<String>,
    /// Idle WebSockets (each subscribed to a queue) opened to measure what one costs the
    /// server's memory; 0 skips it. The open-file limit bounds it (20,000 here).
    #[arg(long, default_value_t = 2000)]
    idle_sockets: usize,
    /// Subscribers of one conversation that each of `--fanout-messages` messages reaches; 0
    /// skips the fan-out figure.
    #[arg(long, default_value_t = 1000)]
    fanout: usize,
    /// Messages of the fan-out run, one every 100 ms.
    #[arg(long, default_value_t = 20)]
    fanout_messages: usize,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!("jono-load: {} failed call(s); the first:", problems.len());
            for problem in problems.iter().take(5) {
                eprintln!("  {problem}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("jono-load: {error}");
            ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    eprintln!("jono-load: {what}");
}

/// The machine, for the report: cores, CPU, load average.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}, load average {}", load_average())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn jono_binary(args: &Args) -> Fallible<PathBuf> {
    let path = match &args.jono {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("this tool's folder")?
            .join("jono"),
    };
    if !path.exists() {
        return Err(format!(
            "{} is missing: build it (cargo build --release -p gateway --bin jono) or pass --jono",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// Runs everything; the failed calls, if any.
async fn run(args: Args) -> Fallible<Vec<String>> {
    if args.clients == 0 || args.conversations == 0 || args.samples == 0 || args.rate <= 0.0 {
        return Err("--clients, --conversations, --samples and --rate must be positive".into());
    }
    if args.nodes == 0 || (args.nodes > 1 && args.database_url.is_none()) {
        return Err("--nodes: at least 1, and more than 1 only with --database-url".into());
    }
    let bin = jono_binary(&args)?;
    let started_on = machine();
    let work = tempfile::Builder::new()
        .prefix("jono-load.")
        .tempdir_in(&args.dir)?;
    let data = work.path().join("data");
    let ceilings_dir = work.path().join("ceiling");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&ceilings_dir)?;
    progress(&format!(
        "{started_on}; working in {}",
        work.path().display()
    ));

    let mut figures = Vec::new();
    let mut problems = Vec::new();

    // a. The ceilings, before Jono starts.
    let mut single_ceiling = None;
    for rows in [1u64, 32] {
        progress(&format!("SQLite ceiling, {rows}-row transactions"));
        let (dir, writers, seconds) = (ceilings_dir.clone(), args.clients, args.ceiling_seconds);
        let ceiling =
            tokio::task::spawn_blocking(move || ceiling::sqlite(&dir, writers, rows, seconds))
                .await??;
        figures.push(ceiling_figure("SQLite", &ceiling, args.clients));
        if rows == 1 && args.database_url.is_none() {
            single_ceiling = Some(("SQLite 1-row tx/s", ceiling.transactions_per_second()));
        }
    }
    if let Some(url) = &args.database_url {
        for rows in [1u64, 32] {
            progress(&format!("Postgres ceiling, {rows}-row transactions"));
            let ceiling = ceiling::postgres(url, args.clients, rows, args.ceiling_seconds).await?;
            figures.push(ceiling_figure("Postgres", &ceiling, args.clients));
            if rows == 1 {
                single_ceiling = Some(("Postgres 1-row tx/s", ceiling.transactions_per_second()));
            }
        }
    }

    // Jono, on a fresh store.
    let (store_args, schema) = match &args.database_url {
        Some(url) => {
            let (schema_url, schema) = fresh_schema(url).await?;
            (vec!["--database-url".to_owned(), schema_url], Some(schema))
        }
        None => (vec!["--data".to_owned(), data.display().to_string()], None),
    };
    let backend = match (&schema, args.nodes) {
        (Some(_), 1) => "Postgres".to_owned(),
        (Some(_), nodes) => format!("Postgres, {nodes} nodes"),
        (None, _) => "SQLite".to_owned(),
    };
    // Several nodes on one database need NATS (a second node without it refuses to start).
    let own_nats = match (&args.nats_url, args.nodes) {
        (None, nodes) if nodes > 1 => Some(jono_tests::nats::Nats::start().ok_or(
            "--nodes 2 or more needs --nats-url, or nats-server installed (jono-load starts one)",
        )?),
        _ => None,
    };
    let nats_url = args
        .nats_url
        .clone()
        .or_else(|| own_nats.as_ref().map(|nats| nats.url.clone()));
    progress(&format!("starting {} serve on {backend}", bin.display()));
    let mut servers = Vec::new();
    for _ in 0..args.nodes {
        let (bin, store_args, nats_url) = (bin.clone(), store_args.clone(), nats_url.clone());
        servers.push(
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = store_args.iter().map(String::as_str).collect();
                let mut env = vec![
                    ("JONO_RATE_LIMITS", "off"),
                    ("JONO_SIGNUP", "open"),
                    ("JONO_MAX_CONNECTIONS_PER_ADDRESS", "1000000"),
                    ("JONO_MAX_CONNECTIONS", "1000000"),
                    ("JONO_CUSTOMER_TIMEOUT_SECONDS", "86400"),
                    ("JONO_LOG", "warn"),
                ];
                if let Some(url) = nats_url.as_deref() {
                    env.push(("JONO_NATS_URL", url));
                }
                Server::start_bin(&bin, &args, &env)
            })
            .await?,
        );
    }
    let bases: Vec<String> = servers.iter().map(|server| server.base.clone()).collect();
    let measured = measure(
        &bases,
        servers[0].child.id(),
        &args,
        &backend,
        single_ceiling,
    )
    .await;
    let server = servers.remove(0);
    for other in servers {
        let _ = tokio::task::spawn_blocking(move || other.terminate()).await;
    }
    let server_log = server.stderr();
    let stopped = tokio::task::spawn_blocking(move || server.terminate()).await;
    if let (Some(schema), Some(url)) = (&schema, &args.database_url) {
        drop_schema(url, schema).await?;
    }
    let (jono_figures, jono_problems) = match measured {
        Ok(done) => done,
        Err(error) => {
            eprintln!("jono serve's log, last lines:\n{}", tail(&server_log, 40));
            return Err(error);
        }
    };
    figures.extend(jono_figures);
    problems.extend(jono_problems);
    match stopped {
        Ok(status) if status.success() => {}
        Ok(status) => problems.push(format!("jono serve exited with {status} on SIGTERM")),
        Err(error) => problems.push(format!("jono serve did not stop: {error}")),
    }
    if !problems.is_empty() {
        eprintln!("jono serve's log, last lines:\n{}", tail(&server_log, 40));
    }

    // The single-row ceiling once more, now that Jono has stopped: how much the disk (or the
    // machine) drifted during the run.
    progress("the 1-row ceiling again");
    let again = match &args.database_url {
        Some(url) => ceiling::postgres(url, args.clients, 1, args.ceiling_seconds).await?,
        None => {
            let (dir, writers, seconds) =
                (ceilings_dir.clone(), args.clients, args.ceiling_seconds);
            tokio::task::spawn_blocking(move || ceiling::sqlite(&dir, writers, 1, seconds))
                .await??
        }
    };
    let mut figure = ceiling_figure(
        if schema.is_some() {
            "Postgres"
        } else {
            "SQLite"
        },
        &again,
        args.clients,
    );
    figure.name.push_str(", again after Jono");
    if let Some((name, value)) = single_ceiling {
        figure = figure.against(name, value);
    }
    figures.push(figure);

    let ended_on = load_average();
    if args.json {
        let report = json!({
            "machine": started_on,
            "load_average_at_end": ended_on,
            "backend": backend,
            "dir": args.dir,
            "clients": args.clients,
            "duration_seconds": args.duration,
            "conversations": args.conversations,
            "rate": args.rate,
            "figures": figures.iter().map(Figure::json).collect::<Vec<_>>(),
            "failed_calls": problems.len(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "jono-load: Jono on {backend}, {} clients, {} s runs, {} conversations, {} messages/s live",
            args.clients, args.duration, args.conversations, args.rate
        );
        println!("machine: {started_on} (at the start), {ended_on} (at the end)");
        println!("disk: {}", args.dir.display());
        print!("{}", figures::table(&figures));
    }
    Ok(problems)
}

fn ceiling_figure(backend: &str, ceiling: &ceiling::Ceiling, writers: usize) -> Figure {
    let figure = if ceiling.rows_per_transaction == 1 {
        Figure::new(format!(
            "ceiling: {backend} 1-row transactions, {writers} writers"
        ))
        .value(ceiling.transactions_per_second(), "tx/s")
    } else {
        Figure::new(format!(
            "ceiling: {backend} rows in {}-row transactions, {writers} writers",
            ceiling.rows_per_transaction
        ))
        .value(ceiling.rows_per_second(), "rows/s")
    };
    figure.latencies(&ceiling.samples)
}

/// b–f against the running server: the figures and the failed calls.
async fn measure(
    bases: &[String],
    pid: u32,
    args: &Args,
    backend: &str,
    ceiling: Option<(&str, f64)>,
) -> Fallible<(Vec<Figure>, Vec<String>)> {
    let client = client::Client::new(&bases[0])?;
    let mut ready = false;
    for _ in 0..300 {
        if client.status("/readyz").await.ok() == Some(200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        return Err("jono serve never became ready (GET /readyz)".into());
    }
    let mut figures = Vec::new();
    let mut problems = Vec::new();
    let org = Org::new(bases).await?;
    progress(&format!(
        "{} customers join and are picked",
        args.conversations
    ));
    let conversations = org.conversations(args.conversations).await?;

    // b. Throughput.
    progress(&format!(
        "{} clients send messages for {} s",
        args.clients, args.duration
    ));
    let duration = Duration::from_secs_f64(args.duration);
    let sent = scenarios::send_messages(
        &org,
        &conversations,
        args.clients,
        duration,
        Pace::Closed,
        "load ",
        std::time::Instant::now(),
    )
    .await?;
    let mut figure = Figure::new(format!(
        "Jono ({backend}): durable SendMessage/s, {} clients",
        args.clients
    ))
    .value(sent.per_second(), "msg/s")
    .latencies(&sent.samples);
    if let Some((name, value)) = ceiling {
        figure = figure.against(name, value);
    }
    figures.push(figure);
    problems.extend(sent.errors);

    // c. POST → WebSocket frame, right after that load.
    progress(&format!(
        "{} messages/s over {} conversations, each watched over a WebSocket, for {} s",
        args.rate, args.conversations, args.duration
    ));
    let live = scenarios::live(&org, &conversations, args.clients, args.rate, duration).await?;
    figures.push(
        Figure::new(format!(
            "Jono ({backend}): POST → WebSocket frame at {} msg/s",
            args.rate
        ))
        .value(live.sent.per_second(), "msg/s")
        .latencies(&live.samples),
    );
    figures.push(
        Figure::new(format!(
            "Jono ({backend}): SendMessage answer at {} msg/s",
            args.rate
        ))
        .value(live.sent.per_second(), "msg/s")
        .latencies(&live.sent.samples),
    );
    if live.received < live.sent.ok {
        problems.push(format!(
            "{} of {} acknowledged messages never reached their WebSocket within 10 s",
            live.sent.ok - live.received,
            live.sent.ok
        ));
    }
    problems.extend(live.sent.errors);

    // d. History: a long conversation, a queue that has served many.
    progress(&format!(
        "one conversation to message {} (one message after another)",
        args.history
    ));
    let history = scenarios::history(&org, args.history, args.samples).await?;
    let first_name = format!("messages 1–{}", args.samples);
    figures.push(history_figure(
        format!("Jono ({backend}): SendMessage, {first_name} of a conversation"),
        &history.first,
        None,
    ));
    figures.push(history_figure(
        format!(
            "Jono ({backend}): SendMessage, {} messages around the {}th",
            args.samples, args.history
        ),
        &history.around,
        Some((format!("{first_name} p50 ms"), history.first.p50())),
    ));
    progress(&format!("a queue serves {} customers", args.served));
    let served = scenarios::served(&org, args.served, args.samples).await?;
    figures.push(history_figure(
        format!("Jono ({backend}): join + pick, fresh queue"),
        &served.fresh,
        None,
    ));
    figures.push(history_figure(
        format!(
            "Jono ({backend}): join + pick, after {} served",
            args.served
        ),
        &served.after,
        Some(("fresh queue p50 ms".into(), served.fresh.p50())),
    ));
    // e. Idle sockets: what one costs the server.
    if args.idle_sockets > 0 {
        progress(&format!("{} idle WebSockets", args.idle_sockets));
        let idle = sockets::idle(&org, pid, args.idle_sockets).await?;
        figures.push(
            Figure::new(format!(
                "Jono ({backend}): server memory per idle subscribed WebSocket, {} open",
                idle.count
            ))
            .value(idle.per_socket() / 1024.0, "KiB")
            .against("bound (issue 14) KiB", 25.0),
        );
        figures.push(
            Figure::new(format!(
                "Jono ({backend}): server resident memory with {} idle WebSockets",
                idle.count
            ))
            .value(idle.after as f64 / (1024.0 * 1024.0), "MiB")
            .against("bound for 19,000 (issue 14) MiB", 512.0),
        );
    }

    // f. One event to many subscribers of a topic.
    if args.fanout > 0 {
        progress(&format!(
            "{} messages, each to {} subscribers of one conversation",
            args.fanout_messages, args.fanout
        ));
        let conversation = &conversations
            .first()
            .ok_or("no conversation for the fan-out")?
            .conversation;
        let fanout = sockets::fanout(&org, conversation, args.fanout, args.fanout_messages).await?;
        figures.push(
            Figure::new(format!(
                "Jono ({backend}): POST → WebSocket frame, one event to {} subscribers",
                args.fanout
            ))
            .value(fanout.received as f64, "frames")
            .latencies(&fanout.samples),
        );
        if fanout.received < fanout.expected {
            problems.push(format!(
                "{} of {} fan-out frames never arrived within 10 s",
                fanout.expected - fanout.received,
                fanout.expected
            ));
        }
    }
    Ok((figures, problems))
}

fn history_figure(
    name: String,
    samples: &Samples,
    baseline: Option<(String, Option<Duration>)>,
) -> Figure {
    let figure = Figure::new(name).latencies(samples);
    match baseline {
        Some((name, p50)) => figure.against_p50(name, p50),
        None => figure,
    }
}

/// A fresh schema on the Postgres at `url`; the URL that points `jono` at it, and its name.
async fn fresh_schema(url: &str) -> Fallible<(String, String)> {
    let schema = format!("jono_load_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok((
        format!("{url}{separator}options=-csearch_path%3D{schema}"),
        schema,
    ))
}

async fn drop_schema(url: &str, schema: &str) -> Fallible<()> {
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
