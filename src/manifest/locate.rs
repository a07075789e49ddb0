//! Where images live in Kubernetes manifests.

use std::path::Path;

use crate::domain::ImageRef;
use crate::yaml::Node;

use super::edit::{MapAt, ScalarAt};
use super::{ImageSite, ManifestError, PinRules, SiteKind, TemplatedSite, helm, kustomize};

/// A site plus what it takes to pin it.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub site: ImageSite,
    pub writable: Writable,
    /// False when the reference's tag is decided elsewhere (a kustomize entry
    /// without `newTag`, Helm values without a tag).
    pub tag_set: bool,
}

/// How a site's digest is written.
#[derive(Debug, Clone)]
pub(crate) enum Writable {
    /// The scalar holds the whole reference; write `reference.pinned(d)`.
    Reference(ScalarAt),
    /// The scalar holds `prefix` then the reference (`old=new:tag`, Argo
    /// CD Image Updater); write `prefix` + `reference.pinned(d)`.
    PrefixedReference { scalar: ScalarAt, prefix: String },
    /// The scalar holds a tag; write `tag@digest`.
    TagWithDigest(ScalarAt),
    /// A `key:` of `map` holds the digest; set it, or add it when absent.
    DigestKey {
        existing: Option<ScalarAt>,
        map: MapAt,
        key: String,
    },
    /// The site cannot be pinned; pinning it is an error with this message.
    Refuse { what: String, hint: String },
}

#[derive(Debug, Default)]
pub(crate) struct Found {
    pub sites: Vec<Located>,
    pub templated: Vec<TemplatedSite>,
}

/// Context shared while walking one file.
pub(crate) struct Walk<'a> {
    pub path: &'a str,
    pub source: &'a str,
    pub found: Found,
}

impl Walk<'_> {
    /// Parses the reference held by `node`. `Ok(None)` when there is no
    /// usable value (null, not a scalar, or a template expression, which is
    /// recorded in `templated`).
    pub fn reference(
        &mut self,
        node: &Node,
    ) -> Result<Option<(ImageRef, ScalarAt)>, ManifestError> {
        let Some(scalar) = ScalarAt::of(node) else {
            return Ok(None);
        };
        if scalar.text.is_empty() {
            return Ok(None);
        }
        if is_template(&scalar.text) {
            self.templated(node, &scalar.text);
            return Ok(None);
        }
        let reference = self.parse_ref(node, &scalar.text)?;
        Ok(Some((reference, scalar)))
    }

    pub fn parse_ref(&self, node: &Node, text: &str) -> Result<ImageRef, ManifestError> {
        text.parse().map_err(|source| ManifestError::BadReference {
            path: self.path.to_owned(),
            line: node.span.start.line,
            column: node.span.start.column,
            text: text.to_owned(),
            source,
        })
    }

    pub fn templated(&mut self, node: &Node, text: &str) {
        self.found.templated.push(TemplatedSite {
            line: node.span.start.line,
            column: node.span.start.column,
            text: text.to_owned(),
        });
    }
}

/// A value written for a template engine (Helm, envsubst, Flux
/// post-build substitution) rather than a reference.
pub(crate) fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("${")
}

pub(crate) fn locate(
    path: &str,
    source: &str,
    docs: &[Node],
    rules: &PinRules,
) -> Result<Found, ManifestError> {
    let mut walk = Walk {
        path,
        source,
        found: Found::default(),
    };
    let kustomization_file = matches!(
        Path::new(path).file_name().and_then(|n| n.to_str()),
        Some("kustomization.yaml" | "kustomization.yml" | "Kustomization")
    );
    let write_back_file = super::image_updater::is_write_back_file(path);
    for doc in docs {
        if write_back_file {
            super::image_updater::sites(&mut walk, doc, rules)?;
            continue;
        }
        resource(&mut walk, doc, kustomization_file)?;
        for rule in rules.helm.iter().filter(|r| r.files.is_match(path)) {
            helm::sites(&mut walk, doc, rule)?;
        }
    }
    // File order (the walk visits some fields out of order).
    walk.found
        .sites
        .sort_by_key(|l| (l.site.line, l.site.column));
    // Aliases repeat their anchor's site; report each place once per role.
    let mut seen = std::collections::HashSet::new();
    walk.found
        .sites
        .retain(|l| seen.insert((l.site.line, l.site.column, format!("{:?}", l.site.kind))));
    Ok(walk.found)
}

fn resource(walk: &mut Walk, node: &Node, kustomization_file: bool) -> Result<(), ManifestError> {
    let kind = node.get("kind").and_then(Node::as_str).unwrap_or("");
    let api = node.get("apiVersion").and_then(Node::as_str).unwrap_or("");
    let group = api.split_once('/').map_or("", |(g, _)| g);
    let name = node
        .get_path("metadata.name")
        .and_then(Node::as_str)
        .map(str::to_owned);
    let workload = Workload { kind, name: &name };
    match kind {
        "List" => {
            for item in node.get("items").and_then(Node::as_seq).unwrap_or(&[]) {
                resource(walk, item, false)?;
            }
        }
        "Pod" => pod_spec(walk, node.get("spec"), &workload)?,
        "CronJob" => pod_spec(
            walk,
            node.get_path("spec.jobTemplate.spec.template.spec"),
            &workload,
        )?,
        "PodTemplate" => pod_spec(walk, node.get_path("template.spec"), &workload)?,
        "InferenceService" if group.starts_with("serving.k") => kserve(walk, node, &workload)?,
        "Kustomization" if group == "kustomize.toolkit.fluxcd.io" => {
            if let Some(images) = node.get_path("spec.images") {
                kustomize::entries(walk, images)?;
            }
        }
        "Kustomization" | "Component" if group == "kustomize.config.k8s.io" || api.is_empty() => {
            if let Some(images) = node.get("images") {
                kustomize::entries(walk, images)?;
            }
        }
        "" if kustomization_file => {
            if let Some(images) = node.get("images") {
                kustomize::entries(walk, images)?;
            }
        }
        // Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Argo
        // Rollout, Knative Service, and any other resource with a pod
        // template in the usual place.
        _ if !kind.is_empty() => pod_spec(walk, node.get_path("spec.template.spec"), &workload)?,
        _ => {}
    }
    Ok(())
}

pub(crate) struct Workload<'a> {
    kind: &'a str,
    name: &'a Option<String>,
}

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// The containers of a pod spec (or of anything shaped like one).
fn pod_spec(
    walk: &mut Walk,
    spec: Option<&Node>,
    workload: &Workload,
) -> Result<(), ManifestError> {
    let Some(spec) = spec else { return Ok(()) };
    for list in CONTAINER_LISTS {
        for container in spec.get(list).and_then(Node::as_seq).unwrap_or(&[]) {
            let name = container
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_owned();
            container_image(walk, container, workload, name)?;
        }
    }
    Ok(())
}

fn container_image(
    walk: &mut Walk,
    container: &Node,
    workload: &Workload,
    container_name: String,
) -> Result<(), ManifestError> {
    let Some(image) = container.get("image") else {
        return Ok(());
    };
    let Some((reference, scalar)) = walk.reference(image)? else {
        return Ok(());
    };
    walk.found.sites.push(Located {
        site: ImageSite {
            line: image.span.start.line,
            column: image.span.start.column,
            reference,
            kind: SiteKind::Container {
                workload: workload.kind.to_owned(),
                resource: workload.name.clone(),
                container: container_name,
            },
        },
        writable: Writable::Reference(scalar),
        tag_set: true,
    });
    Ok(())
}

/// KServe predictor framework specs (each embeds a container).
const KSERVE_PREDICTOR_FRAMEWORKS: &[&str] = &[
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
    "model",
];
/// KServe explainer specs (`art`; `alibi` and `aix` in older releases).
const KSERVE_EXPLAINERS: &[&str] = &["art", "alibi", "aix"];

/// `serving.kserve.io/v1beta1` InferenceService: each component is a pod
/// spec inline (`containers`, `initContainers`) plus framework specs that
/// embed a container (`predictor.model.image`), and the predictor's
/// `workerSpec` pod spec.
fn kserve(walk: &mut Walk, node: &Node, workload: &Workload) -> Result<(), ManifestError> {
    for (component, frameworks) in [
        ("predictor", KSERVE_PREDICTOR_FRAMEWORKS),
        ("transformer", &[][..]),
        ("explainer", KSERVE_EXPLAINERS),
    ] {
        let Some(spec) = node.get("spec").and_then(|s| s.get(component)) else {
            continue;
        };
        pod_spec(walk, Some(spec), workload)?;
        if component == "predictor" {
            pod_spec(walk, spec.get("workerSpec"), workload)?;
        }
        for framework in frameworks {
            if let Some(container) = spec.get(framework) {
                container_image(
                    walk,
                    container,
                    workload,
                    format!("{component}.{framework}"),
                )?;
            }
        }
    }
    Ok(())
}
