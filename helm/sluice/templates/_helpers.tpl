{{/* Names are the release name plus a suffix, cut to the 63 characters Kubernetes allows. */}}
{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sluice.secretName" -}}
{{- default (printf "%s-secrets" (include "sluice.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The environment every Sluice container gets: settings from the ConfigMap, secrets from the Secret. */}}
{{- define "sluice.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "sluice.fullname" . }}-config
  - secretRef:
      name: {{ include "sluice.secretName" . }}
{{- end -}}

{{/* Checks a stream entry; `fail` stops rendering with a message that says what to change. */}}
{{- define "sluice.validateStream" -}}
{{- if not .name -}}{{- fail "every entry of streams needs a name (a directory under streams/ in the image)" -}}{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .name) -}}{{- fail (printf "stream name %q must be lowercase letters, digits and dashes" .name) -}}{{- end -}}
{{- if lt (int .partitions) 1 -}}{{- fail (printf "stream %s: set partitions to the partition count of its topic" .name) -}}{{- end -}}
{{- if gt (int .replicas) (int .partitions) -}}{{- fail (printf "stream %s: replicas (%d) must not exceed partitions (%d): extra consumers would sit idle" .name (int .replicas) (int .partitions)) -}}{{- end -}}
{{- if le (int .terminationGracePeriodSeconds) (int .shutdownTimeoutSeconds) -}}{{- fail (printf "stream %s: terminationGracePeriodSeconds (%d) must exceed shutdownTimeoutSeconds (%d), or pods are killed mid-commit" .name (int .terminationGracePeriodSeconds) (int .shutdownTimeoutSeconds)) -}}{{- end -}}
{{- end -}}
