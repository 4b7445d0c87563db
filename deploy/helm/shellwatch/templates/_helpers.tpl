{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "shellwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name. */}}
{{- define "shellwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "shellwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "shellwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shellwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "shellwatch.labels" -}}
helm.sh/chart: {{ include "shellwatch.chart" . }}
{{ include "shellwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: worker
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "shellwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shellwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "shellwatch.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "shellwatch.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "shellwatch.fullname" .)) .Values.rules.existingConfigMap }}
{{- end }}

{{/* The ConfigMap of the operator's rules (SHELLWATCH_RULES): the one named, else the chart's when rules.extra
has files, else none (empty). */}}
{{- define "shellwatch.extraRulesConfigMap" -}}
{{- if .Values.rules.extraConfigMap }}{{ .Values.rules.extraConfigMap }}
{{- else if .Values.rules.extra }}{{ printf "%s-extra-rules" (include "shellwatch.fullname" .) }}
{{- end }}
{{- end }}

{{/* SASL needs a Secret with the credentials; SSL and SASL_SSL take the TLS Secret when one is given. */}}
{{- define "shellwatch.sasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{- define "shellwatch.tls" -}}
{{- if and (has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL")) .Values.kafka.tls.existingSecret }}true{{ end }}
{{- end }}
