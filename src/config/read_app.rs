//! Decodes `apps[]` and everything below it.

use super::decode::{Decoder, Path};
use super::globs::check_glob;
use super::model::*;
use super::model_app::*;
use super::read::*;
use super::scalars::Items;
use super::values::{check_app_name, check_key_path, check_matcher};
use crate::yaml::Node;

pub(crate) fn apps(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<Vec<AppConfig>> {
    let apps = d.list(node, at, "a list of apps", Items::Mappings, app)?;
    if apps.is_empty() {
        d.warning(
            node.span,
            at,
            "no apps are configured, so revertbot has nothing to watch",
            "add an app: `apps: [{ name: guestbook, paths: [\"guestbook/**\"] }]`",
        );
    }
    Some(apps)
}

fn app(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<AppConfig> {
    let mut r = open(d, node, at, &APP)?;
    let name = r.required(d, "name", "name: guestbook", |d, n, p| {
        d.checked(n, p, check_app_name)
    });
    let paths = r.required(d, "paths", "paths: [\"guestbook/**\"]", globs);
    let argocd = r.optional(d, "argocd", app_argocd);
    let flux = r.optional(d, "flux", app_flux);
    let label = r
        .peek("name")
        .and_then(Node::as_str)
        .unwrap_or("guestbook")
        .to_owned();
    match (r.peek("argocd"), r.peek("flux")) {
        (Some(_), Some(f)) => d.error(
            f.span,
            at,
            format!("{at} sets both `argocd` and `flux`"),
            "an app is deployed by one controller: keep the one that deploys it",
        ),
        (None, None) => d.warning(
            r.span(),
            at,
            format!("{at} (`{label}`) has neither `argocd` nor `flux`, so `check` and `watch` cannot observe it; `plan` and `revert` still work"),
            format!("add `argocd: {{ app: {label} }}` or `flux: {{ kind: Kustomization, name: {label} }}`"),
        ),
        _ => {}
    }
    let health = r.or_default(d, "health", HealthConfig::default, health);
    let policy = r.or_default(d, "policy", PolicyConfig::default, policy);
    let wait = r.or_default(d, "wait", WaitConfig::default, wait);
    let revert = r.or_default(d, "revert", RevertConfig::default, revert);
    let images = r.or_default(d, "images", ImagesConfig::default, images);
    r.finish();
    Some(AppConfig {
        name: name?,
        paths: paths?,
        argocd: argocd?,
        flux: flux?,
        health: health?,
        policy: policy?,
        wait: wait?,
        revert: revert?,
        images: images?,
    })
}

/// A non-empty list of valid repo-relative globs.
fn globs(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<Vec<String>> {
    let globs = d.list(node, at, "a list of globs", Items::Scalars, |d, n, p| {
        d.checked(n, p, check_glob)
    })?;
    if globs.is_empty() {
        let example = if at.last_key() == "files" {
            "guestbook/values.yaml"
        } else {
            "guestbook/**"
        };
        let hint = format!(
            "list the files it covers, like `{}: [\"{example}\"]`",
            at.last_key()
        );
        d.error(node.span, at, format!("{at} is empty"), hint);
        return None;
    }
    Some(globs)
}

fn app_argocd(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<AppArgoCd> {
    let mut r = open(d, node, at, &APP_ARGOCD)?;
    let app = r.required(d, "app", "app: guestbook", word);
    let namespace = r.optional(d, "namespace", word);
    r.finish();
    Some(AppArgoCd {
        app: app?,
        namespace: namespace?,
    })
}

fn app_flux(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<AppFlux> {
    let mut r = open(d, node, at, &APP_FLUX)?;
    let kind = r.required(d, "kind", "kind: Kustomization", Decoder::keyword);
    let name = r.required(d, "name", "name: guestbook", word);
    let namespace = r.or_default(d, "namespace", default_flux_namespace, word);
    r.finish();
    Some(AppFlux {
        kind: kind?,
        name: name?,
        namespace: namespace?,
    })
}

fn health(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<HealthConfig> {
    let mut r = open(d, node, at, &HEALTH)?;
    let controller = r.or_default(d, "controller", yes, Decoder::boolean);
    let pods = r.or_default(d, "pods", PodsConfig::default, pods);
    let slos = r.or_default(d, "slos", Vec::new, slos);
    let alerts = r.optional(d, "alerts", alerts);
    r.finish();
    Some(HealthConfig {
        controller: controller?,
        pods: pods?,
        slos: slos?,
        alerts: alerts?,
    })
}

fn pods(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<PodsConfig> {
    let mut r = open(d, node, at, &PODS)?;
    let crashloop = r.or_default(d, "crashloop", yes, Decoder::boolean);
    let image_pull = r.or_default(d, "image_pull", yes, Decoder::boolean);
    let not_ready_for = r.or_default(
        d,
        "not_ready_for",
        default_not_ready_for,
        Decoder::positive_duration,
    );
    r.finish();
    Some(PodsConfig {
        crashloop: crashloop?,
        image_pull: image_pull?,
        not_ready_for: not_ready_for?,
    })
}

fn slos(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<Vec<Slo>> {
    let slos = d.list(node, at, "a list of SLOs", Items::Mappings, slo);
    // Names must be unique within the app: they identify the SLO in reports.
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, item) in node.as_seq().unwrap_or_default().iter().enumerate() {
        let Some(name_node) = item.get("name") else {
            continue;
        };
        let Some(name) = name_node.as_str() else {
            continue;
        };
        match seen.iter().find(|(n, _)| *n == name) {
            Some((_, line)) => d.error(
                name_node.span,
                &at.index(i).key("name"),
                format!("duplicate SLO name `{name}` in {at} (first on line {line})"),
                "give each SLO of an app its own name",
            ),
            None => seen.push((name, name_node.span.start.line)),
        }
    }
    slos
}

fn slo(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<Slo> {
    let mut r = open(d, node, at, &SLO)?;
    let name = r.required(d, "name", "name: error-rate", text);
    let query = r.required(d, "query", "query: <PromQL returning one value>", text);
    let above = r.optional(d, "above", Decoder::number);
    let below = r.optional(d, "below", Decoder::number);
    let relative = r.optional(d, "relative_to_baseline", baseline);
    let window = r.required(d, "for", "for: 5m", Decoder::positive_duration);
    let severity = r.required(d, "severity", "severity: critical", Decoder::keyword);
    if r.peek("above").is_none()
        && r.peek("below").is_none()
        && r.peek("relative_to_baseline").is_none()
    {
        d.error(
            r.span(),
            at,
            format!("{at} has no threshold: set `above`, `below` or `relative_to_baseline`"),
            "e.g. `above: 0.25` breaches when the query stays above 0.25 for the `for` window",
        );
    }
    if let (Some(Some(hi)), Some(Some(lo))) = (above, below)
        && lo >= hi
        && let Some(below_node) = r.peek("below")
    {
        d.error(
            below_node.span,
            &at.key("below"),
            format!("{at} always breaches: `below: {lo}` is not less than `above: {hi}`"),
            "a value breaches when it is above `above` or below `below`; keep `below` lower than `above`",
        );
    }
    r.finish();
    Some(Slo {
        name: name?,
        query: query?,
        above: above?,
        below: below?,
        relative_to_baseline: relative?,
        r#for: window?,
        severity: severity?,
    })
}

fn baseline(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<Baseline> {
    let mut r = open(d, node, at, &BASELINE)?;
    let above = r.optional(d, "above", Decoder::percent);
    let below = r.optional(d, "below", Decoder::percent);
    if r.peek("above").is_none() && r.peek("below").is_none() {
        d.error(
            r.span(),
            at,
            format!("{at} has neither `above` nor `below`"),
            "e.g. `relative_to_baseline: { below: -3% }`",
        );
    }
    if let (Some(Some(p)), Some(n)) = (below, r.peek("below"))
        && p.value() > 0.0
    {
        d.warning(
            n.span,
            &at.key("below"),
            format!("{at}.below is {p}: the SLO breaches whenever the value is less than {}% above its baseline", p.value().abs()),
            format!("to breach on a drop of {}% write `below: -{}%`", p.value(), p.value()),
        );
    }
    if let (Some(Some(p)), Some(n)) = (above, r.peek("above"))
        && p.value() < 0.0
    {
        d.warning(
            n.span,
            &at.key("above"),
            format!("{at}.above is {p}: the SLO breaches whenever the value is more than {}% below its baseline", p.value().abs()),
            format!("to breach on a rise of {}% write `above: +{}%`", p.value().abs(), p.value().abs()),
        );
    }
    r.finish();
    Some(Baseline {
        above: above?,
        below: below?,
    })
}

fn alerts(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<AlertsConfig> {
    let mut r = open(d, node, at, &ALERTS)?;
    let matchers = r.required(
        d,
        "matchers",
        "matchers: ['app=\"guestbook\"']",
        |d, n, p| {
            let list = d.list(n, p, "a list of matchers", Items::Scalars, |d, n, p| {
                d.checked(n, p, check_matcher)
            })?;
            if list.is_empty() {
                d.error(
                    n.span,
                    p,
                    format!("{p} is empty, so every alert would match"),
                    "add a matcher like 'app=\"guestbook\"'",
                );
                return None;
            }
            Some(list)
        },
    );
    r.finish();
    Some(AlertsConfig {
        matchers: matchers?,
    })
}

fn policy(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<PolicyConfig> {
    let mut r = open(d, node, at, &POLICY)?;
    let critical = r.or_default(d, "critical", default_critical, Decoder::keyword);
    let warning = r.or_default(d, "warning", default_warning, Decoder::keyword);
    let cooldown = r.or_default(d, "cooldown", default_cooldown, Decoder::duration);
    let max_reverts = r.or_default(d, "max_reverts", MaxReverts::default, max_reverts);
    let freeze = r.or_default(d, "freeze", || false, Decoder::boolean);
    let grace = r.or_default(d, "grace", default_grace, Decoder::duration);
    r.finish();
    Some(PolicyConfig {
        critical: critical?,
        warning: warning?,
        cooldown: cooldown?,
        max_reverts: max_reverts?,
        freeze: freeze?,
        grace: grace?,
    })
}

fn max_reverts(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<MaxReverts> {
    let mut r = open(d, node, at, &MAX_REVERTS)?;
    let count = r.or_default(d, "count", default_max_count, |d, n, p| {
        d.integer(n, p, 1, i64::from(u32::MAX))
            .and_then(|v| u32::try_from(v).ok())
    });
    let per = r.or_default(d, "per", default_max_per, Decoder::positive_duration);
    r.finish();
    Some(MaxReverts {
        count: count?,
        per: per?,
    })
}

fn wait(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<WaitConfig> {
    let mut r = open(d, node, at, &WAIT)?;
    let timeout = r.or_default(d, "timeout", default_timeout, Decoder::positive_duration);
    r.finish();
    Some(WaitConfig { timeout: timeout? })
}

fn revert(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<RevertConfig> {
    let mut r = open(d, node, at, &REVERT)?;
    let scope = r.or_default(d, "scope", RevertScope::default, Decoder::keyword);
    let allow_outside = r.or_default(d, "allow_outside", || false, Decoder::boolean);
    r.finish();
    Some(RevertConfig {
        scope: scope?,
        allow_outside: allow_outside?,
    })
}

fn images(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<ImagesConfig> {
    let mut r = open(d, node, at, &IMAGES)?;
    let pin = r.or_default(d, "pin", yes, Decoder::boolean);
    let helm = r.or_default(d, "helm", Vec::new, |d, n, p| {
        d.list(
            n,
            p,
            "a list of Helm image locations",
            Items::Mappings,
            helm_image,
        )
    });
    r.finish();
    Some(ImagesConfig {
        pin: pin?,
        helm: helm?,
    })
}

fn helm_image(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<HelmImage> {
    let mut r = open(d, node, at, &HELM)?;
    let key_path = |d: &mut Decoder<'_>, n: &Node, p: &Path| d.checked(n, p, check_key_path);
    let files = r.required(d, "files", "files: [\"charts/*/values.yaml\"]", globs);
    let repository = r.required(d, "repository", "repository: image.repository", key_path);
    let tag = r.required(d, "tag", "tag: image.tag", key_path);
    let digest = r.optional(d, "digest", key_path);
    r.finish();
    Some(HelmImage {
        files: files?,
        repository: repository?,
        tag: tag?,
        digest: digest?,
    })
}
