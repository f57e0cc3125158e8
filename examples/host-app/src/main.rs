//! `host-app CONFIG_DIR [ADDRESS]`: the example host over a Home Assistant config directory.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "config".into()));
    let address = args
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "127.0.0.1:8123".to_owned());
    let host = auth_host::Host::from_config_dir(&dir).await?;
    let app = host_app::start(&host).await?;
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("host-app listening on http://{}", listener.local_addr()?);
    host_app::serve(listener, app).await?;
    Ok(())
}
