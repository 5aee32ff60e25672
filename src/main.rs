//! The jobmgr binary: parse arguments, run, turn the result into an exit code.

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,refinery_core=warn"),
    )
    .format_timestamp_millis()
    .init();
    let code = match jobmgr::cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jobmgr: {e}");
            1
        }
    };
    std::process::exit(code);
}
