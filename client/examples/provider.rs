//! A provider: registers an instance of `demo.service`, keeps it registered (renews every 30 s,
//! registers again if a node forgot it), and cancels it on Ctrl-C.
//!
//! ```sh
//! cargo run --release                                            # a node on 127.0.0.1:7171
//! cargo run -p discovery-client --example provider -- 127.0.0.1:7171
//! ```

use discovery_client::{Client, Config, Service};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut nodes: Vec<String> = std::env::args().skip(1).collect();
    if nodes.is_empty() {
        nodes.push("127.0.0.1:7171".into());
    }
    let config = Config::new(nodes)
        .zone("sh001")
        .env("dev")
        .hostname("provider-1");
    let client = Client::new(config)?;
    let service = Service::new("demo.service", ["grpc://127.0.0.1:9000"])
        .version("v1.0")
        .metadata("weight", "10");
    let registration = client.register(service).await?;
    println!("registered {:?}; Ctrl-C cancels", registration.service());
    tokio::signal::ctrl_c().await?;
    // Cancels every registration of the client before the runtime ends.
    client.shutdown().await;
    println!("cancelled");
    Ok(())
}
