//! `callgate serve --config F [-u]`: load and validate the config, then run the gateway until
//! SIGTERM (graceful: in-flight requests finish) or SIGINT; SIGHUP or an edit of the config or
//! adapter files reloads the config live; SIGQUIT hands the listening sockets to a new process
//! started with `-u` (binary upgrade).

use callgate::config;
use callgate::server;
use pingora::server::RunArgs;
use std::path::Path;
use std::process::ExitCode;

pub fn run(config_path: &Path, upgrade: bool) -> ExitCode {
    let runtime = match config::load(config_path, &config::process_env) {
        Ok(rt) => rt,
        Err(errors) => {
            for e in &errors {
                eprintln!("callgate: config error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let log = callgate::logging::init(
        &runtime.settings.log_format,
        &runtime.settings.log_level,
        &runtime.settings.tracing,
    );
    let settings = runtime.settings.clone();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => tracing::info!(files, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
    tracing::info!(
        config = %config_path.display(),
        listen = %settings.listen,
        admin = %settings.admin_listen,
        providers = runtime.providers.len(),
        tenants = runtime.tenants.len(),
        "callgate starting"
    );
    let opts = server::ServeOptions {
        upgrade,
        reload: Some((config_path.to_path_buf(), config::process_env)),
        ..Default::default()
    };
    let (server, _gateway) = server::gateway_server(runtime, opts);
    // `run`, not `run_forever` (which exits the process): the log guard must drop after the
    // last line, so that the queued lines reach stdout.
    server.run(RunArgs::default());
    drop(log);
    ExitCode::SUCCESS
}
