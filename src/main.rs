//! The `crier` command: parse the command line, validate the configuration once, run the
//! subcommand, exit with its code. All behaviour lives in the library.

use crier::cli::{self, AdminCommand, Command};
use crier::commands::admin;
use crier::commands::{self, EXIT_USAGE};
use crier::config::Config;
use crier::logging;

fn main() {
    let (command, settings) = cli::parse();
    let config = match Config::from_args(&settings.server, &settings.delivery, &settings.payments) {
        Ok(config) => config,
        Err(err) => {
            // One line, every problem in it: `crier: invalid configuration: --a / CRIER_A: …; …`.
            eprintln!("crier: invalid configuration: {}", err.0.join("; "));
            std::process::exit(EXIT_USAGE);
        }
    };
    logging::init(config.log_format, config.log_level);
    install_panic_hook();

    let code = match command.unwrap_or(Command::Serve) {
        Command::Serve => commands::serve(config),
        Command::Migrate => commands::migrate(&config),
        Command::Backup { file } => commands::backup(&config, &file),
        Command::Doctor => commands::doctor(&config),
        Command::DkimRecord => commands::dkim_record(&config),
        Command::Admin { command } => match command {
            AdminCommand::CreateUser(args) => admin::create_user(config, args),
            AdminCommand::CreateApiKey(args) => admin::create_api_key(config, args),
            AdminCommand::AdjustWallet(args) => admin::adjust_wallet(config, args),
        },
    };
    std::process::exit(code);
}

/// Panics are logged as one structured line (with the thread name, which carries the worker),
/// instead of the default multi-line text that would break JSON logs.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map(|at| format!("{}:{}", at.file(), at.line()))
            .unwrap_or_default();
        let message = crier::error::panic_message(info.payload());
        log::error!(
            thread = thread.name().unwrap_or("unnamed"), location = location.as_str(),
            panic = message;
            "panic"
        );
    }));
}
