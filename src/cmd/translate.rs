//! `gatehouse translate`: offline, what each gateway's Envoy would receive, and the status of
//! every object.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_controller::ResourceType;
use gatehouse_controller::model::load_dir;
use gatehouse_controller::translate::{TranslateOptions, Translator, static_bootstrap};
use prost::Message as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// For people: resource names and versions by gateway, then problems.
    Text,
    /// Every resource in full (protobuf JSON mapping, `Any` expanded), statuses, effective
    /// security and diagnostics.
    Json,
    /// The same as YAML.
    Yaml,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TypeFilter {
    All,
    Cluster,
    Endpoint,
    Listener,
    Route,
    Secret,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TranslateArgs {
    /// The configuration directory.
    #[arg(short = 'f', long = "file", value_name = "DIR")]
    dir: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Format,
    /// Only resources of this type.
    #[arg(long = "type", value_enum, default_value = "all")]
    resource_type: TypeFilter,
    /// Write each gateway's configuration as a static Envoy bootstrap (binary protobuf,
    /// `NAMESPACE_NAME.pb`) into DIR, for `envoy --mode validate -c FILE`.
    #[arg(long, value_name = "DIR")]
    static_dir: Option<PathBuf>,
    /// The address listeners bind.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: String,
    /// The lowest listener port accepted.
    #[arg(long, default_value_t = 1)]
    min_port: u16,
}

pub(crate) fn run(args: &TranslateArgs) -> anyhow::Result<ExitCode> {
    let (config, diags) = load_dir(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", args.dir.display()))?;
    let t = Translator::new(TranslateOptions {
        bind_address: args.bind_address.clone(),
        min_port: args.min_port,
    })
    .translate(&config);
    let types: Vec<ResourceType> = match args.resource_type {
        TypeFilter::All => ResourceType::ALL.to_vec(),
        TypeFilter::Cluster => vec![ResourceType::Cluster],
        TypeFilter::Endpoint => vec![ResourceType::Endpoint],
        TypeFilter::Listener => vec![ResourceType::Listener],
        TypeFilter::Route => vec![ResourceType::Route],
        TypeFilter::Secret => vec![ResourceType::Secret],
    };
    if let Some(dir) = &args.static_dir {
        std::fs::create_dir_all(dir)?;
        for (gw, snap) in &t.snapshots {
            let file = dir.join(format!("{}_{}.pb", gw.namespace(), gw.name()));
            std::fs::write(&file, static_bootstrap(snap)?.encode_to_vec())?;
            eprintln!("wrote {}", file.display());
        }
    }
    let problems: Vec<String> = diags
        .iter()
        .map(ToString::to_string)
        .chain(t.status.iter().flat_map(|s| s.problems()))
        .collect();
    match args.output {
        Format::Text => {
            for (gw, snap) in &t.snapshots {
                println!("gateway {gw}");
                for ty in &types {
                    for (name, r) in snap.resources(*ty) {
                        println!("  {:<4} {name}  (version {})", ty.short(), r.version());
                    }
                }
            }
            if !problems.is_empty() {
                println!("problems:");
                for p in &problems {
                    println!("  {p}");
                }
            }
        }
        Format::Json | Format::Yaml => {
            let mut gateways = serde_json::Map::new();
            for (gw, snap) in &t.snapshots {
                let mut res = serde_json::Map::new();
                for ty in &types {
                    let list = snap
                        .resources(*ty)
                        .values()
                        .map(|r| {
                            gatehouse_controller::translate::to_json(r)
                                .map_err(|e| anyhow::anyhow!(e))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    res.insert(ty.short().to_owned(), serde_json::Value::Array(list));
                }
                gateways.insert(gw.to_string(), serde_json::Value::Object(res));
            }
            let v = serde_json::json!({
                "gateways": gateways,
                "status": t.status,
                "security": t.security,
                "diagnostics": diags,
            });
            if args.output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let mut o = serde_saphyr::SerializerOptions::default();
                o.prefer_block_scalars = false;
                print!("{}", serde_saphyr::to_string_with_options(&v, o)?);
            }
        }
    }
    // Problems are reported, but translation itself succeeded: exit 0 unless files were bad.
    Ok(if diags.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
