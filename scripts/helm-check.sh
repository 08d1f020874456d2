#!/usr/bin/env bash
# Checks the Helm chart the way CI does, offline except for the package registries:
#   1. builds pinned helm and kubeconform from the Go module proxy into .sluice/tools (once);
#   2. installs the Kubernetes JSON schemas from PyPI (kubernetes-validate ships them) into .sluice/tools (once);
#   3. helm lint, helm template (default values and a multi-stream example), and
#      kubeconform -strict on the rendered manifests against those schemas;
#   4. checks that invalid values (replicas > partitions) are refused by the template.
# Idempotent: a second run reuses the cached tools.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VALIDATE_VERSION=1.37.0
# The Kubernetes version the manifests are validated against (kubernetes-validate ships its schemas).
KUBERNETES_VERSION=1.33.0

TOOLS="$PWD/.sluice/tools"
mkdir -p "$TOOLS/bin"
export GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod

# go install leaves no module version in these binaries' own version output: a marker file records it.
if [ "$(cat "$TOOLS/bin/helm.version" 2>/dev/null)" != "$HELM_VERSION" ] || [ ! -x "$TOOLS/bin/helm" ]; then
  echo "building helm $HELM_VERSION from the Go module proxy" >&2
  go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" > "$TOOLS/bin/helm.version"
fi
if [ "$(cat "$TOOLS/bin/kubeconform.version" 2>/dev/null)" != "$KUBECONFORM_VERSION" ] || [ ! -x "$TOOLS/bin/kubeconform" ]; then
  echo "building kubeconform $KUBECONFORM_VERSION from the Go module proxy" >&2
  go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  echo "$KUBECONFORM_VERSION" > "$TOOLS/bin/kubeconform.version"
fi

SCHEMAS="$TOOLS/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
if [ ! -f "$SCHEMAS/.complete" ]; then
  echo "installing Kubernetes JSON schemas (kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI)" >&2
  rm -rf "$SCHEMAS"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$SCHEMAS" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  touch "$SCHEMAS/.complete"
fi
# kubernetes-validate's schemas carry https://kubernetes.io/api/... ids and point at their shared
# definitions as "/api/_definitions.json", which its own resolver maps to the packaged file. kubeconform
# would fetch those URLs; a copy without the ids and with relative references resolves as local files.
PACKAGED="$(find "$SCHEMAS" -type d -name "v${KUBERNETES_VERSION}-local-strict" | head -1)"
if [ -z "$PACKAGED" ]; then
  echo "no schemas for Kubernetes v$KUBERNETES_VERSION in kubernetes-validate $KUBERNETES_VALIDATE_VERSION" >&2
  exit 1
fi
SCHEMA_ROOT="$TOOLS/kubernetes-schemas"
STANDALONE="$SCHEMA_ROOT/v${KUBERNETES_VERSION}-standalone-strict"
if [ ! -f "$STANDALONE/.complete" ]; then
  rm -rf "$STANDALONE" && mkdir -p "$STANDALONE"
  python3 - "$PACKAGED" "$STANDALONE" <<'PY'
import json, pathlib, sys
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for path in source.glob('*.json'):
    text = path.read_text().replace('"/api/_definitions.json#', '"_definitions.json#')
    schema = json.loads(text)
    schema.pop('$id', None)
    (target / path.name).write_text(json.dumps(schema))
PY
  touch "$STANDALONE/.complete"
fi

HELM="$TOOLS/bin/helm"
CHART=helm/sluice
OUT="$PWD/.sluice/helm"
mkdir -p "$OUT"
export HELM_CACHE_HOME="$OUT/cache" HELM_CONFIG_HOME="$OUT/config" HELM_DATA_HOME="$OUT/data"

"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/full-values.yaml"
"$HELM" template sluice "$CHART" --namespace sluice > "$OUT/default.yaml"
"$HELM" template sluice "$CHART" --namespace sluice -f "$CHART/ci/full-values.yaml" --api-versions monitoring.coreos.com/v1 > "$OUT/full.yaml"

# ServiceMonitor is a CRD with no schema in the Kubernetes set: skip it, validate everything else strictly.
"$TOOLS/bin/kubeconform" -strict -summary -kubernetes-version "$KUBERNETES_VERSION" \
  -schema-location "$SCHEMA_ROOT/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  -skip ServiceMonitor \
  "$OUT/default.yaml" "$OUT/full.yaml"

# The validation must be able to fail: a Deployment with a misspelt field is rejected.
sed '0,/  replicas: /s//  replica: /' "$OUT/default.yaml" > "$OUT/broken.yaml"
if "$TOOLS/bin/kubeconform" -strict -kubernetes-version "$KUBERNETES_VERSION" \
  -schema-location "$SCHEMA_ROOT/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  "$OUT/broken.yaml" > "$OUT/broken.txt" 2>&1; then
  echo "kubeconform accepted a Deployment with an unknown field: the schemas are not in force" >&2
  exit 1
fi
grep -q "replica" "$OUT/broken.txt"

# The template must refuse more replicas than partitions (idle consumers that still count as capacity).
if "$HELM" template sluice "$CHART" --set 'streams[0].name=event-counts' --set 'streams[0].partitions=2' --set 'streams[0].replicas=3' > /dev/null 2> "$OUT/refused.txt"; then
  echo "helm template accepted replicas > partitions" >&2
  exit 1
fi
grep -q "replicas" "$OUT/refused.txt"
echo "helm chart: lint, template and schema validation passed"
