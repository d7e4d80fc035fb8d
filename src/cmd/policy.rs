//! `gatehouse policy validate|fmt|test|check|explain|schema`: Cedar admission offline, with
//! the same engine as the control plane.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gatehouse_controller::admission::{
    ObjectDecision, cedar_files, evaluate, load_policies, policy_objects, run_test_file, test_files,
};
use gatehouse_controller::model::{Config, load_dir};
use gatehouse_controller::translate::{TranslateOptions, Translator};
use gatehouse_policies::{Decision, Engine, PolicyDiagnostic, Severity};

use super::Output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check policies: parse, `@id`/`@enforcement`, strict validation against the schema.
    Validate(ValidateArgs),
    /// Format `*.cedar` files (Cedar's formatter; comments are kept).
    Fmt(FmtArgs),
    /// Run the declarative test cases (`*.test.yaml`, `*.test.yml`, `*.test.json`) of DIR.
    Test(TestArgs),
    /// The decisions the control plane would make on a configuration; exit 1 if anything is
    /// denied.
    Check(CheckArgs),
    /// Every claim of one object, its decision and why.
    Explain(ExplainArgs),
    /// Print the Cedar schema policies are validated against.
    Schema,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// The policy directory: its `*.cedar` files and GatewayPolicy documents.
    #[arg(
        short = 'p',
        long = "policies",
        value_name = "DIR",
        default_value = "."
    )]
    dir: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
pub(crate) struct FmtArgs {
    /// The policy directory (its `*.cedar` files, recursively).
    #[arg(
        short = 'p',
        long = "policies",
        value_name = "DIR",
        default_value = "."
    )]
    dir: PathBuf,
    /// Change nothing; exit 1 and list the files that are not formatted.
    #[arg(long, conflicts_with = "write")]
    check: bool,
    /// Rewrite the files that are not formatted.
    #[arg(long)]
    write: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// The directory: its `*.cedar` files are the policies, its test files the cases.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum TableOrJson {
    /// One row per object and finding.
    #[default]
    Table,
    /// For programs.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The configuration directory (YAML; its `*.cedar` files are policies too).
    #[arg(short = 'f', long = "file", value_name = "CONFIG_DIR")]
    config: PathBuf,
    /// More policies: `*.cedar` files and GatewayPolicy documents.
    #[arg(short = 'p', long = "policies", value_name = "DIR")]
    policies: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: TableOrJson,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    /// The configuration directory.
    #[arg(short = 'f', long = "file", value_name = "CONFIG_DIR")]
    config: PathBuf,
    /// More policies: `*.cedar` files and GatewayPolicy documents.
    #[arg(short = 'p', long = "policies", value_name = "DIR")]
    policies: Option<PathBuf>,
    /// The object: `HTTPRoute/NAMESPACE/NAME` (or `GRPCRoute/...`).
    object: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Validate(a) => validate(&a),
        PolicyCommand::Fmt(a) => fmt(&a),
        PolicyCommand::Test(a) => test(&a),
        PolicyCommand::Check(a) => check(&a),
        PolicyCommand::Explain(a) => explain(&a),
        PolicyCommand::Schema => {
            print!("{}", gatehouse_policies::SCHEMA);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn need_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("`{}` is not a directory", dir.display());
    }
    Ok(())
}

/// The configuration of `dir`, with the GatewayPolicy documents of `policies` added.
fn configuration(dir: &Path, policies: Option<&Path>) -> anyhow::Result<Config> {
    need_dir(dir)?;
    let (mut config, diags) =
        load_dir(dir).map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", dir.display()))?;
    for d in &diags {
        eprintln!("warning: {d}");
    }
    if let Some(p) = policies {
        need_dir(p)?;
        config.gateway_policies.extend(policy_objects(p));
    }
    Ok(config)
}

fn print_diagnostics(diags: &[PolicyDiagnostic]) {
    for d in diags {
        println!("{d}");
    }
}

/// The engine for `check` and `explain`, or the diagnostics printed and exit 1.
fn engine(config_dir: &Path, policies: Option<&Path>, config: &Config) -> Result<Engine, ExitCode> {
    let mut dirs = vec![config_dir];
    dirs.extend(policies);
    match load_policies(&dirs, config) {
        Ok((engine, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            Ok(engine)
        }
        Err(invalid) => {
            for d in &invalid.diagnostics {
                eprintln!("{d}");
            }
            eprintln!(
                "error: the policy set is invalid ({} errors): nothing can be admitted with it",
                invalid
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .count()
            );
            Err(ExitCode::FAILURE)
        }
    }
}

fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    need_dir(&args.dir)?;
    let config = Config {
        gateway_policies: policy_objects(&args.dir),
        ..Config::default()
    };
    let files = cedar_files(&args.dir)?;
    if files.is_empty() && config.gateway_policies.is_empty() {
        anyhow::bail!(
            "no `*.cedar` file or GatewayPolicy in `{}`",
            args.dir.display()
        );
    }
    let result = load_policies(&[&args.dir], &config);
    let (valid, diags, ids): (bool, Vec<PolicyDiagnostic>, Vec<String>) = match result {
        Ok((engine, warnings)) => (true, warnings, engine.policies().keys().cloned().collect()),
        Err(e) => (false, e.diagnostics, Vec::new()),
    };
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    match args.output {
        Output::Text => {
            print_diagnostics(&diags);
            if valid {
                println!(
                    "{} policies valid (strict validation against the Gatehouse schema), {warnings} warnings: {}",
                    ids.len(),
                    ids.join(", ")
                );
            } else {
                println!(
                    "policy set invalid: {errors} errors, {warnings} warnings; it would be refused as a whole"
                );
            }
        }
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "valid": valid,
                "policies": ids,
                "diagnostics": diags,
            }))?
        ),
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn fmt(args: &FmtArgs) -> anyhow::Result<ExitCode> {
    need_dir(&args.dir)?;
    let files = cedar_files(&args.dir)?;
    if files.is_empty() {
        anyhow::bail!("no `*.cedar` file in `{}`", args.dir.display());
    }
    let mut bad = false;
    let mut unformatted = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", f.display()))?;
        let formatted = match gatehouse_policies::format_policies(&f.display().to_string(), &text) {
            Ok(t) => t,
            Err(d) => {
                eprintln!("{d}");
                bad = true;
                continue;
            }
        };
        let formatted = if formatted.ends_with('\n') {
            formatted
        } else {
            format!("{formatted}\n")
        };
        if args.check {
            if formatted != text {
                println!("{}: not formatted", f.display());
                unformatted.push(f.clone());
            }
        } else if args.write {
            if formatted != text {
                std::fs::write(f, &formatted)
                    .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", f.display()))?;
                println!("formatted {}", f.display());
            }
        } else {
            if files.len() > 1 {
                println!("// ==> {} <==", f.display());
            }
            print!("{formatted}");
        }
    }
    if args.check && unformatted.is_empty() && !bad {
        eprintln!("{} files formatted", files.len());
    }
    Ok(if bad || !unformatted.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn test(args: &TestArgs) -> anyhow::Result<ExitCode> {
    need_dir(&args.dir)?;
    let policies = cedar_files(&args.dir)?;
    let files = test_files(&args.dir)?;
    if files.is_empty() {
        anyhow::bail!(
            "no test file (`*.test.yaml`, `*.test.yml`, `*.test.json`) in `{}`",
            args.dir.display()
        );
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut outcomes = Vec::new();
    for f in &files {
        match run_test_file(f, &policies) {
            Ok(o) => {
                for c in &o.cases {
                    if c.passed {
                        passed += 1;
                    } else {
                        failed += 1;
                    }
                    if args.output == Output::Text {
                        if c.passed {
                            println!("ok    {}: {} ({})", f.display(), c.name, c.detail);
                        } else {
                            println!("FAIL  {}: {}: {}", f.display(), c.name, c.detail);
                        }
                    }
                }
                outcomes.push(serde_json::to_value(&o)?);
            }
            Err(e) => {
                failed += 1;
                if args.output == Output::Text {
                    println!("FAIL  {}: {e}", f.display());
                }
                outcomes.push(serde_json::json!({"file": f, "error": e}));
            }
        }
    }
    match args.output {
        Output::Text => println!("{passed} passed, {failed} failed"),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "passed": passed,
                "failed": failed,
                "files": outcomes,
            }))?
        ),
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn table(rows: &[[String; 5]]) {
    let mut widths = [0usize; 5];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i == r.len() - 1 {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", line.trim_end());
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let config = configuration(&args.config, args.policies.as_deref())?;
    let engine = match engine(&args.config, args.policies.as_deref(), &config) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let t = Translator::new(TranslateOptions::default()).translate(&config);
    let eval = evaluate(&engine, &config, &t);
    let objects: Vec<&ObjectDecision> = eval.report.objects.values().collect();
    let count = |d: Decision| objects.iter().filter(|o| o.decision == d).count();
    let denied = count(Decision::Deny);
    match args.output {
        TableOrJson::Table => {
            let mut rows = vec![[
                "OBJECT".to_owned(),
                "DECISION".to_owned(),
                "POLICY".to_owned(),
                "MODE".to_owned(),
                "CLAIM / MESSAGE".to_owned(),
            ]];
            for o in &objects {
                if o.findings.is_empty() {
                    rows.push([
                        o.object.to_string(),
                        o.decision.to_string(),
                        "-".into(),
                        "-".into(),
                        format!("{} claims", o.claims),
                    ]);
                }
                for (i, f) in o.findings.iter().enumerate() {
                    rows.push([
                        if i == 0 {
                            o.object.to_string()
                        } else {
                            String::new()
                        },
                        if i == 0 {
                            o.decision.to_string()
                        } else {
                            String::new()
                        },
                        f.policy.clone(),
                        if f.error {
                            "error".into()
                        } else {
                            f.enforcement.to_string()
                        },
                        format!("{}: {}", f.claim, f.message),
                    ]);
                }
            }
            table(&rows);
            println!(
                "\n{} objects: {} allowed, {} warned, {denied} denied; {} policies in force",
                objects.len(),
                count(Decision::Allow),
                count(Decision::Warn),
                engine.policies().len()
            );
        }
        TableOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "policies": engine.policies().values().collect::<Vec<_>>(),
                "objects": objects,
                "summary": {
                    "allowed": count(Decision::Allow),
                    "warned": count(Decision::Warn),
                    "denied": denied,
                },
            }))?
        ),
    }
    Ok(if denied == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let config = configuration(&args.config, args.policies.as_deref())?;
    let engine = match engine(&args.config, args.policies.as_deref(), &config) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let t = Translator::new(TranslateOptions::default()).translate(&config);
    let eval = evaluate(&engine, &config, &t);
    let claims: Vec<_> = eval
        .claims
        .iter()
        .filter(|(c, _)| c.object.to_string() == args.object)
        .collect();
    let Some(decision) = eval
        .report
        .objects
        .values()
        .find(|o| o.object.to_string() == args.object)
    else {
        // No claim: not a route, not found, or not programmed by the translator.
        let status = t
            .status
            .iter()
            .find(|s| s.object.to_string() == args.object);
        match status {
            Some(s) => {
                let problems = s.problems();
                anyhow::bail!(
                    "`{}` makes no claim: it is not attached to any listener{}",
                    args.object,
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", problems.join("; "))
                    }
                )
            }
            None => anyhow::bail!(
                "`{}` not found (objects making claims: {})",
                args.object,
                eval.report
                    .objects
                    .keys()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    match args.output {
        Output::Text => {
            println!(
                "{} ({}): {} — {} claims, {} policies in force",
                decision.object,
                decision.origin,
                decision.decision,
                claims.len(),
                engine.policies().len()
            );
            for (c, d) in &claims {
                println!("\n  {}: {}", d.decision, c.claim);
                if d.findings.is_empty() {
                    println!("    no policy objects");
                }
                for f in &d.findings {
                    if f.error {
                        println!("    error: {}", f.message);
                    } else {
                        let at = engine
                            .policies()
                            .get(&f.policy)
                            .map(|p| format!(" ({}:{})", p.file, p.line))
                            .unwrap_or_default();
                        println!("    {} `{}`{at}: {}", f.enforcement, f.policy, f.message);
                    }
                }
            }
            println!(
                "\ndecision: {}{}",
                decision.decision,
                match decision.decision {
                    Decision::Deny => " (not programmed)",
                    Decision::Warn => " (programmed with a warning)",
                    Decision::Allow => "",
                }
            );
        }
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "object": decision.object,
                "origin": decision.origin,
                "decision": decision.decision,
                "claims": claims.iter().map(|(c, d)| serde_json::json!({
                    "claim": c.claim,
                    "description": c.claim.to_string(),
                    "decision": d.decision,
                    "findings": d.findings,
                })).collect::<Vec<_>>(),
            }))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}
