//! `callgate serve --config F`: load and validate the config, then run the gateway until
//! SIGTERM (graceful: in-flight requests finish) or SIGINT.

use callgate::config;
use callgate::server;
use std::path::Path;
use std::process::ExitCode;

pub fn run(config_path: &Path) -> ExitCode {
    let runtime = match config::load(config_path, &config::process_env) {
        Ok(rt) => rt,
        Err(errors) => {
            for e in &errors {
                eprintln!("callgate: config error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    callgate::logging::init(&runtime.settings.log_format, &runtime.settings.log_level);
    let settings = runtime.settings.clone();
    tracing::info!(
        config = %config_path.display(),
        listen = %settings.listen,
        admin = %settings.admin_listen,
        providers = runtime.providers.len(),
        tenants = runtime.tenants.len(),
        "callgate starting"
    );
    let (server, _gateway) = server::gateway_server(runtime, 10, None);
    server.run_forever()
}
