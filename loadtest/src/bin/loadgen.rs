//! `loadgen`: load scenarios against a discovery server on loopback.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use loadtest::args::Args;
use loadtest::http::blocking_request;
use loadtest::proto::Ident;
use loadtest::scenario::common::Common;
use loadtest::scenario::{capacity, fetch, fleet, park, renew};
use loadtest::{report, sys};

const USAGE: &str = "\
loadgen <command> [--flag value ...]

Scenarios (every one stops by itself; see README.md for all flags):
  fetch     --conns 64 --duration 10s [--apps 1 --instances 10] [--multi]
  renew     --conns 64 --duration 10s --instances 1000
  fleet     --instances 1000 --renew-interval 30s --consumers 100 --watch 10
            --churn 10/s --duration 30s
  park      --polls 2000 [--apps 1] --duration 60s
  capacity  --renew-interval 30s --p99-ms 50 [--start 1000 --factor 2]

Common flags: --addr 127.0.0.1:7171 --threads <nproc> --server-pid PID
  --out FILE.json --label NAME --env dev --zone sh001 --region sh
  --src-addrs N --driver auto|uring|epoll --timeout 5s --quiet

Helpers:
  body <fetch|renew> [scenario flags] --out FILE   answer body for the ceiling
  free-port                                        print a free loopback port
  wait-ready --addr A [--timeout 30s] [--pid P]    wait for GET /discovery/nodes = 200
  report --dir DIR [--scenario S]                  write DIR/summary.md and chart
";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        eprint!("{USAGE}");
        std::process::exit(2);
    };
    let rest = &argv[1..];
    let r: Result<(), String> = match cmd.as_str() {
        "fetch" => fetch::run(rest).map(|_| ()),
        "renew" => renew::run(rest).map(|_| ()),
        "fleet" => fleet::run(rest).map(|_| ()),
        "park" => park::run(rest).map(|_| ()),
        "capacity" => capacity::run(rest).map(|_| ()),
        "body" => body(rest),
        "free-port" => sys::free_port()
            .map(|p| println!("{p}"))
            .map_err(|e| e.to_string()),
        "wait-ready" => wait_ready(rest),
        "report" => report::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    if let Err(e) = r {
        eprintln!("loadgen {cmd}: {e}");
        std::process::exit(1);
    }
}

/// Writes the answer body a fetch, renew or woken poll of the scenario's set-up gets.
fn body(argv: &[String]) -> Result<(), String> {
    let Some(kind) = argv.first() else {
        return Err("body needs a scenario: fetch, renew or park".into());
    };
    let rest = &argv[1..];
    let a = Args::parse(rest, &["multi", "quiet", "single"])?; // park's switches too
    let c = Common::parse(&a, 1)?;
    let text = match kind.as_str() {
        "fetch" => fetch::FetchCfg::parse(&a)?.sample_body(&c.ident),
        "renew" => renew::RenewCfg::parse(&a)?.sample_body(&c.ident),
        "park" => park::sample_body(&a, &c.ident)?,
        other => return Err(format!("no body for `{other}` (fetch, renew or park)")),
    };
    a.finish()?;
    match &c.out {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Ready = the port accepts connections and GET /discovery/nodes answers 200.
fn wait_ready(argv: &[String]) -> Result<(), String> {
    let a = Args::parse(argv, &[])?;
    let addr: SocketAddrV4 = a
        .string("addr", "127.0.0.1:7171")
        .parse()
        .map_err(|_| "--addr: expected ipv4:port".to_string())?;
    let timeout = a.duration("timeout", Duration::from_secs(30))?;
    let pid = a.opt::<u32>("pid")?;
    a.finish()?;
    if !addr.ip().is_loopback() {
        return Err("only loopback addresses".into());
    }
    let id = Ident {
        host: addr.to_string(),
        env: String::new(),
        zone: String::new(),
        region: String::new(),
    };
    let mut req = Vec::new();
    id.nodes(&mut req);
    let end = Instant::now() + timeout;
    let mut last = String::from("no attempt");
    while Instant::now() < end {
        if let Some(p) = pid {
            if !std::path::Path::new(&format!("/proc/{p}")).exists() {
                return Err(format!("server process {p} exited before it was ready"));
            }
        }
        match blocking_request(addr, &req, Duration::from_secs(1)) {
            Ok((200, _)) => return Ok(()),
            Ok((st, body)) => {
                last = format!(
                    "status {st}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                )
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{addr} not ready after {timeout:?} (last: {last})"))
}
