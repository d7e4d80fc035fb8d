//! `gatehouse status`: what a running control plane reports (read from its status file).

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_controller::status_file::StatusReport;

use super::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The state directory of `gatehouse up` (its `status.json`), or a status file.
    #[arg(long, default_value = ".gatehouse")]
    state_dir: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let path = if args.state_dir.is_dir() {
        args.state_dir.join("status.json")
    } else {
        args.state_dir.clone()
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read `{}`: {e} (is `gatehouse up` or `gatehouse serve --status-file` running?)",
            path.display()
        )
    })?;
    let report: StatusReport = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "`{}` line {}: not a status report: {e}",
            path.display(),
            e.line()
        )
    })?;
    if args.output == Output::Json {
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "configuration {} (status written {})",
        report.config_dir, report.written_at
    );
    println!("\nGATEWAYS");
    for (gw, types) in &report.gateways {
        let counts: Vec<String> = types.iter().map(|(t, (n, _))| format!("{t} {n}")).collect();
        println!("  {gw:<30} {}", counts.join("  "));
    }
    println!("\nOBJECTS");
    for o in &report.objects {
        let key = &o["object"];
        let name = format!(
            "{} {}{}",
            key["kind"].as_str().unwrap_or_default(),
            key["namespace"]
                .as_str()
                .map(|n| if n.is_empty() {
                    String::new()
                } else {
                    format!("{n}/")
                })
                .unwrap_or_default(),
            key["name"].as_str().unwrap_or_default()
        );
        let mut conds: Vec<String> = Vec::new();
        let mut push = |c: &serde_json::Value, part: Option<&str>| {
            conds.push(format!(
                "{}{}={} ({})",
                part.map(|p| format!("{p}:")).unwrap_or_default(),
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default()
            ));
        };
        for c in o["conditions"].as_array().into_iter().flatten() {
            push(c, None);
        }
        for part in o["parts"].as_array().into_iter().flatten() {
            let label = part[0].as_str().unwrap_or_default();
            for c in part[1].as_array().into_iter().flatten() {
                push(c, Some(label));
            }
        }
        println!("  {name:<40} {}", conds.join(" "));
    }
    println!("\nPROXIES");
    if report.proxies.is_empty() {
        println!("  none connected");
    }
    for p in &report.proxies {
        let acked: Vec<String> = p["types"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(t, s)| format!("{t}@{}", s["acked_version"].as_str().unwrap_or("-")))
            .collect();
        println!(
            "  {} from {} since {} ({}) {}",
            p["identity"].as_str().unwrap_or_default(),
            p["peer"].as_str().unwrap_or("?"),
            p["connected_since"].as_str().unwrap_or_default(),
            p["variant"].as_str().unwrap_or_default(),
            acked.join(" ")
        );
    }
    if !report.diagnostics.is_empty() {
        println!("\nPROBLEMS");
        for d in &report.diagnostics {
            println!("  {}", d.text);
        }
    }
    for (gw, n) in &report.last_nacks {
        println!(
            "\nlast NACK of {gw}: {}",
            n["message"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
