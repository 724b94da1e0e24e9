{{/* Names: <release>-kapacitor (StatefulSet and its headless Service), <release>-router. */}}
{{- define "kapacitor-ml.kapacitor" -}}
{{- printf "%s-kapacitor" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kapacitor-ml.router" -}}
{{- printf "%s-router" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kapacitor-ml.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Non-root, read-only root filesystem, no privilege escalation, no capabilities. */}}
{{- define "kapacitor-ml.containerSecurity" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
