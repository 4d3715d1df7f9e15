//! A consumer: reads `demo.service` once, then prints its instances each time they change.
//!
//! ```sh
//! cargo run -p discovery-client --example consumer -- 127.0.0.1:7171
//! ```

use discovery_client::{Client, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut nodes: Vec<String> = std::env::args().skip(1).collect();
    if nodes.is_empty() {
        nodes.push("127.0.0.1:7171".into());
    }
    let config = Config::new(nodes)
        .zone("sh001")
        .env("dev")
        .hostname("consumer-1");
    let client = Client::new(config)?;
    match client.fetch("demo.service").await {
        Ok(info) => println!("now: {} instances", info.len()),
        Err(e) if e.is_not_found() => println!("now: not registered yet"),
        Err(e) => return Err(e.into()),
    }
    let mut watch = client.watch(["demo.service"])?;
    while let Some(apps) = watch.next().await {
        let Some(info) = apps.get("demo.service") else {
            continue;
        };
        for instance in info.preferred("sh001") {
            println!(
                "{} {:?} {:?}",
                instance.hostname, instance.addrs, instance.metadata
            );
        }
        println!("--");
    }
    Ok(())
}
