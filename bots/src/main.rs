//! The `ticksync-bots` binary: parse flags, pin itself for `--find-capacity`, build the
//! runtime (single-threaded unless `--threads`), run, print the report, and exit 0 when
//! the SLO held, 3 when it did not.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ticksync_bots::{Options, find_capacity, run};

/// Exit code of a run that missed its SLO.
const SLO_MISSED: u8 = 3;

fn main() -> ExitCode {
    let opts = Options::parse();
    match main_inner(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(SLO_MISSED),
        Err(e) => {
            eprintln!("ticksync-bots: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner(opts: &Options) -> anyhow::Result<bool> {
    if opts.find_capacity {
        // Before any thread exists, so that every thread the runtime starts inherits it.
        pin_self(&opts.bots_cpu)?;
    }
    let runtime = if opts.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(opts.threads))
            .enable_all()
            .build()
    }
    .context("starting the tokio runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = run_mode(opts) => result,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        }
    })
}

async fn run_mode(opts: &Options) -> anyhow::Result<bool> {
    if opts.find_capacity {
        let report = find_capacity(opts, |step| {
            eprintln!(
                "{} bots: {}",
                step.bots,
                if step.held { "held" } else { "missed" }
            );
            if !opts.json {
                eprintln!("{}", step.report);
            }
        })
        .await?;
        output(opts, &report)?;
        return Ok(report.held.is_some());
    }
    let report = run(opts).await?;
    output(opts, &report)?;
    Ok(report.slo.met)
}

/// The table or the JSON on stdout, and the JSON to `--json-out`.
fn output<R: std::fmt::Display + serde::Serialize>(
    opts: &Options,
    report: &R,
) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    if let Some(path) = &opts.json_out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if opts.json {
        println!("{json}");
    } else {
        print!("{report}");
    }
    Ok(())
}

fn pin_self(cpus: &str) -> anyhow::Result<()> {
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset to pin the bots")?;
    anyhow::ensure!(status.success(), "taskset -a -p -c {cpus} {pid} failed");
    Ok(())
}
