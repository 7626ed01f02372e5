#!/usr/bin/env python3
"""Offline checks of deploy/chart/osm, run by CI without a cluster.

1. Renders the chart with Helm itself (the helm-python-sdk package binds
   Helm's Go SDK; no cluster, no helm binary) for several value sets.
2. Validates every rendered manifest and every CRD against the Kubernetes
   OpenAPI schemas (kubernetes-validate, strict: unknown fields fail).
3. Validates custom resources (the demo's manifests, the preset MeshConfig)
   against the chart's own CRD schemas, as the API server would.
4. Lints the chart's YAML and the rendered output (yamllint).
5. Checks deploy/rendered/osm*.yaml are the chart rendered with each value
   set of rendered/value-sets.yaml (what `osm install --dry-run --set ...`
   must print: the CLI's tests compare); --update rewrites them.

Usage: python3 deploy/check.py [--update]
"""

import glob
import json
import os
import sys

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

ROOT = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(ROOT, "chart", "osm")
RENDERED = os.path.join(ROOT, "rendered", "osm.yaml")
KUBERNETES_VERSION = "1.33.0"
NAMESPACE = "osm-system"

VALUE_SETS = os.path.join(ROOT, "rendered", "value-sets.yaml")


def rendered_path(name):
    return RENDERED if name == "defaults" else os.path.join(ROOT, "rendered", f"osm-{name}.yaml")


def merge(into, values):
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def value_sets():
    """name -> values, each built from `--set` assignments by Helm's parser."""
    with open(VALUE_SETS) as f:
        sets = yaml.safe_load(f)
    out = {}
    for name, assignments in sets.items():
        values = {}
        for assignment in assignments:
            merge(values, helm.parse_set_string(assignment))
        out[name] = values
    return out


failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


def render(chart, values):
    """The chart's manifests as one YAML stream, in a stable order: CRDs,
    then templates by file name (what `osm install` applies)."""
    parts = [c["data"].strip() for c in sorted(chart.crds, key=lambda c: c["filename"])]
    rendered = chart.render(values, name="osm", namespace=NAMESPACE, is_install=True)
    for path in sorted(rendered):
        text = rendered[path].strip()
        if text:
            parts.append(f"# Source: {path}\n{text}")
    return "---\n".join(p + "\n" for p in parts)


def documents(text):
    return [d for d in yaml.safe_load_all(text) if d]


def validate_kubernetes(name, docs):
    for doc in docs:
        what = f"{name}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{what}: {e.message} at {'/'.join(str(p) for p in e.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            fail(f"{what}: no Kubernetes schema (a custom resource among the chart's manifests?)")


def to_json_schema(node):
    """A CRD's structural schema as JSON Schema, strict like the API server
    with field validation: unknown fields are errors unless preserved."""
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
        return {}
    if node.get("x-kubernetes-int-or-string"):
        return {"type": ["integer", "string"]}
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key == "items":
            out[key] = to_json_schema(value)
        elif key.startswith("x-kubernetes-"):
            continue
        else:
            out[key] = value
    if node.get("type") == "object" and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def crd_schemas(docs):
    schemas = {}
    for crd in docs:
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            schemas[key] = to_json_schema(version["schema"]["openAPIV3Schema"])
    return schemas


def validate_custom(schemas, origin, doc):
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in schemas:
        return False
    validator = jsonschema.Draft7Validator(schemas[key])
    for error in validator.iter_errors(doc):
        where = "/".join(str(p) for p in error.path) or "(root)"
        fail(f"{origin}: {key[1]} {doc.get('metadata', {}).get('name')}: {where}: {error.message}")
    return True


def lint(name, text, config):
    for problem in linter.run(text, config):
        if problem.level == "error":
            fail(f"yamllint {name}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})")


def main():
    update = "--update" in sys.argv[1:]
    config = YamlLintConfig(file=os.path.join(ROOT, ".yamllint.yaml"))
    for path in [os.path.join(CHART, "Chart.yaml"), os.path.join(CHART, "values.yaml")] + sorted(
        glob.glob(os.path.join(CHART, "crds", "*.yaml")) + glob.glob(os.path.join(CHART, "gateway-api", "*.yaml"))
    ):
        with open(path) as f:
            lint(os.path.relpath(path, ROOT), f.read(), config)
    for path in sorted(glob.glob(os.path.join(CHART, "dashboards", "*.json"))):
        with open(path) as f:
            board = json.load(f)
        for key in ("uid", "title", "panels"):
            if key not in board:
                fail(f"{os.path.relpath(path, ROOT)}: no {key}")

    chart = helm.Chart.load(CHART)
    # Every value set's CRDs (the optional ones too) check the demo's
    # custom resources.
    schemas = {}
    for name, values in value_sets().items():
        text = render(chart, values)
        docs = documents(text)
        print(f"rendered {name}: {len(docs)} objects")
        lint(f"rendered[{name}]", text, config)
        validate_kubernetes(name, docs)
        schemas.update(crd_schemas(docs))
        path = rendered_path(name)
        if update:
            with open(path, "w") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(path, ROOT)}")
        else:
            try:
                with open(path) as f:
                    committed = f.read()
            except FileNotFoundError:
                committed = ""
            if committed != text:
                fail(f"{os.path.relpath(path, ROOT)} is not the chart rendered with the {name} values: "
                     "run python3 deploy/check.py --update and review the diff")
        # The preset MeshConfig must be a valid MeshConfig.
        for doc in docs:
            if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "preset-mesh-config":
                spec = json.loads(doc["data"]["preset-mesh-config.json"])
                mesh = {"apiVersion": "config.openservicemesh.io/v1alpha2", "kind": "MeshConfig",
                        "metadata": {"name": "osm-mesh-config", "namespace": NAMESPACE}, "spec": spec}
                validate_custom(schemas, f"{name}: preset-mesh-config", mesh)

    checked = 0
    demo = os.path.join(ROOT, "..", "demo", "manifests")
    for path in sorted(glob.glob(os.path.join(demo, "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            for doc in documents(f.read()):
                origin = os.path.relpath(path, os.path.join(ROOT, ".."))
                if validate_custom(schemas, origin, doc):
                    checked += 1
                else:
                    validate_kubernetes(origin, [doc])
    print(f"custom resources checked against the CRDs: {checked}")
    if checked == 0:
        fail("no custom resource was checked")

    if failures:
        print(f"{len(failures)} problem(s)")
        sys.exit(1)
    print("deploy: all checks passed")


if __name__ == "__main__":
    main()
