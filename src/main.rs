//! Start-up only: parse the command line and hand over to the library.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    agency_sso::cli::run().await
}
