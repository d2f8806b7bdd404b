//! `callgate serve --config F`: load and validate the config, then run the gateway until
//! SIGTERM (graceful: in-flight requests finish) or SIGINT.

use callgate::config;
use callgate::gateway::Gateway;
use callgate::server;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

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
    let gateway = Arc::new(Gateway::new(runtime));
    let mut pingora = server::new_server(10);
    for s in server::services(
        &pingora,
        &gateway,
        &settings.listen,
        &settings.admin_listen,
        settings.threads,
    ) {
        pingora.add_boxed_service(s);
    }
    pingora.run_forever()
}
