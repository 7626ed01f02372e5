//! The osm chart (`deploy/chart/osm`), embedded, rendered without Helm: its
//! templates use a small set of Helm's functions (`toYaml`, `toJson`,
//! `nindent`, `quote`, `default`, `trim`, `int`, `.Files.Get`), which are
//! provided here over a Go text/template engine. CI renders the same chart
//! with Helm itself (deploy/check.py) and a test checks both agree, so this
//! renderer cannot drift from the chart.

use gotmpl::{MissingKey, Template, Value};

macro_rules! chart_file {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!("../../../deploy/chart/osm/", $path)),
        )
    };
}

/// Every file of the chart: (path inside the chart, content).
pub const FILES: &[(&str, &str)] = &[
    chart_file!("Chart.yaml"),
    chart_file!("values.yaml"),
    chart_file!("crds/access.smi-spec.io_traffictargets.yaml"),
    chart_file!("crds/config.openservicemesh.io_meshconfigs.yaml"),
    chart_file!("crds/policy.openservicemesh.io_egresses.yaml"),
    chart_file!("crds/policy.openservicemesh.io_ingressbackends.yaml"),
    chart_file!("crds/policy.openservicemesh.io_retries.yaml"),
    chart_file!("crds/policy.openservicemesh.io_upstreamtrafficsettings.yaml"),
    chart_file!("crds/specs.smi-spec.io_httproutegroups.yaml"),
    chart_file!("crds/specs.smi-spec.io_tcproutes.yaml"),
    chart_file!("crds/specs.smi-spec.io_udproutes.yaml"),
    chart_file!("crds/split.smi-spec.io_trafficsplits.yaml"),
    chart_file!("gateway-api/gateway.networking.k8s.io_grpcroutes.yaml"),
    chart_file!("gateway-api/gateway.networking.k8s.io_httproutes.yaml"),
    chart_file!("templates/controller.yaml"),
    chart_file!("templates/gateway-api-crds.yaml"),
    chart_file!("templates/grafana.yaml"),
    chart_file!("templates/injector.yaml"),
    chart_file!("templates/preset-mesh-config.yaml"),
    chart_file!("templates/prometheus.yaml"),
    chart_file!("templates/rbac.yaml"),
    chart_file!("templates/serviceaccounts.yaml"),
    chart_file!("templates/traffic-metrics.yaml"),
    chart_file!("templates/webhooks.yaml"),
    chart_file!("dashboards/osm-control-plane.json"),
    chart_file!("dashboards/osm-mesh-overview.json"),
    chart_file!("dashboards/osm-proxy.json"),
    chart_file!("dashboards/osm-pod-to-service.json"),
    chart_file!("dashboards/osm-service-to-service.json"),
    chart_file!("dashboards/osm-workload-to-service.json"),
    chart_file!("dashboards/osm-workload-to-workload.json"),
    chart_file!("prometheus/sidecar-relabel.yaml"),
];

pub const CHART_NAME: &str = "osm";

fn file(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
}

/// The chart's default values.
pub fn default_values() -> Result<serde_json::Value, String> {
    serde_yaml_ng::from_str(file("values.yaml").unwrap_or_default())
        .map_err(|e| format!("the chart's values.yaml: {e}"))
}

fn chart_metadata() -> Result<serde_json::Value, String> {
    let meta: serde_json::Value = serde_yaml_ng::from_str(file("Chart.yaml").unwrap_or_default())
        .map_err(|e| format!("the chart's Chart.yaml: {e}"))?;
    // Helm exposes Chart.yaml's fields capitalised.
    let mut out = serde_json::Map::new();
    for (k, v) in meta.as_object().into_iter().flatten() {
        let mut chars = k.chars();
        let key: String = chars
            .next()
            .map(|c| c.to_ascii_uppercase())
            .into_iter()
            .chain(chars)
            .collect();
        out.insert(key, v.clone());
    }
    Ok(serde_json::Value::Object(out))
}

fn text(args: &[Value], i: usize) -> String {
    match args.get(i) {
        None | Some(Value::Nil) => String::new(),
        Some(v) => v.to_string(),
    }
}

fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.to_string().into(),
        Value::List(items) => items.iter().map(to_serde).collect(),
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| (k.to_string(), to_serde(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => serde_json::Value::Null,
    }
}

fn string(s: String) -> Value {
    Value::String(s.into())
}

fn indent(spaces: usize, s: &str) -> String {
    let pad = " ".repeat(spaces);
    s.split('\n')
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a value is "empty" in Sprig's sense (what `default` replaces).
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    }
}

fn template(name: &str) -> Template {
    Template::new(name)
        .missing_key(MissingKey::Error)
        .func("toYaml", |a| {
            let yaml = serde_yaml_ng::to_string(&to_serde(a.first().unwrap_or(&Value::Nil)))
                .map_err(|e| gotmpl::TemplateError::Exec(format!("toYaml: {e}")))?;
            Ok(string(yaml.trim_end_matches('\n').to_string()))
        })
        .func("toJson", |a| {
            Ok(string(
                to_serde(a.first().unwrap_or(&Value::Nil)).to_string(),
            ))
        })
        .func("nindent", |a| {
            let n = a.first().and_then(Value::as_int).unwrap_or(0).max(0) as usize;
            Ok(string(format!("\n{}", indent(n, &text(a, 1)))))
        })
        .func("indent", |a| {
            let n = a.first().and_then(Value::as_int).unwrap_or(0).max(0) as usize;
            Ok(string(indent(n, &text(a, 1))))
        })
        .func("quote", |a| Ok(string(format!("{:?}", text(a, 0)))))
        // Helm's `fail`: the chart refuses values it cannot render right.
        .func("fail", |a| Err(gotmpl::TemplateError::Exec(text(a, 0))))
        .func("trim", |a| Ok(string(text(a, 0).trim().to_string())))
        .func("int", |a| {
            Ok(Value::Int(match a.first() {
                Some(Value::Int(i)) => *i,
                Some(Value::Uint(u)) => i64::try_from(*u).unwrap_or(i64::MAX),
                Some(Value::Float(f)) => *f as i64,
                Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
                _ => 0,
            }))
        })
        .func("default", |a| {
            let given = a.get(1).cloned().unwrap_or(Value::Nil);
            Ok(if is_empty(&given) {
                a.first().cloned().unwrap_or(Value::Nil)
            } else {
                given
            })
        })
        .func("filesGet", |a| {
            let path = text(a, 0);
            file(&path)
                .map(|c| string(c.to_string()))
                .ok_or_else(|| gotmpl::TemplateError::Exec(format!(".Files.Get: no file {path}")))
        })
}

/// Renders the chart: CRDs (by file name), then each template (by file
/// name) headed `# Source: osm/templates/<file>`, as one YAML stream.
pub fn render(values: &serde_json::Value, namespace: &str) -> Result<String, String> {
    let context = serde_json::json!({
        "Values": values,
        "Release": {"Name": CHART_NAME, "Namespace": namespace, "Service": "Helm",
                    "IsInstall": true, "IsUpgrade": false, "Revision": 1},
        "Chart": chart_metadata()?,
    });
    let data = gotmpl::to_value(&context).map_err(|e| format!("values: {e}"))?;
    let mut parts: Vec<String> = Vec::new();
    let mut crds: Vec<&(&str, &str)> = FILES
        .iter()
        .filter(|(p, _)| p.starts_with("crds/"))
        .collect();
    crds.sort_by_key(|(p, _)| *p);
    parts.extend(crds.iter().map(|(_, c)| c.trim().to_string()));
    let mut templates: Vec<&(&str, &str)> = FILES
        .iter()
        .filter(|(p, _)| p.starts_with("templates/"))
        .collect();
    templates.sort_by_key(|(p, _)| *p);
    for (path, source) in templates {
        // `.Files.Get` is a method call in Helm; here it is a function.
        let source = source.replace(".Files.Get ", "filesGet ");
        let rendered = template(path)
            .parse(&source)
            .map_err(|e| format!("{path}: {e}"))?
            .execute_to_string(&data)
            .map_err(|e| format!("{path}: {e}"))?;
        let rendered = rendered.trim();
        if !rendered.is_empty() {
            parts.push(format!("# Source: {CHART_NAME}/{path}\n{rendered}"));
        }
    }
    Ok(parts
        .iter()
        .map(|p| format!("{p}\n"))
        .collect::<Vec<_>>()
        .join("---\n"))
}

/// The chart rendered for a mesh name, namespace and `--set` values.
pub fn manifests(mesh_name: &str, namespace: &str, set: &[String]) -> anyhow::Result<String> {
    let mut values = default_values().map_err(anyhow::Error::msg)?;
    super::values::set(&mut values, &format!("osm.meshName={mesh_name}"))
        .map_err(anyhow::Error::msg)?;
    for assignment in set {
        super::values::set(&mut values, assignment).map_err(anyhow::Error::msg)?;
    }
    render(&values, namespace).map_err(|e| anyhow::anyhow!("rendering the chart: {e}"))
}

#[cfg(test)]
mod tests;
