{{/* Chart name, or nameOverride. */}}
{{- define "imtegrity.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name: fullnameOverride, else "<release>-<name>", or the
release name alone when it already contains the chart name. Cut to 45
characters, so that "-operator" and "-cluster" suffixes keep names within 63.
*/}}
{{- define "imtegrity.fullname" -}}
{{- $name := include "imtegrity.name" . }}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "imtegrity.operatorName" -}}
{{- printf "%s-operator" (include "imtegrity.fullname" .) }}
{{- end }}

{{- define "imtegrity.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "imtegrity.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "imtegrity.labels" -}}
app.kubernetes.io/name: {{ include "imtegrity.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels that select the operator's pod; a Deployment cannot change them later. */}}
{{- define "imtegrity.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "imtegrity.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* An image reference from {repository, tag, digest}; the tag defaults to appVersion. */}}
{{- define "imtegrity.image" -}}
{{- $image := index . 0 }}
{{- $appVersion := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $appVersion $image.tag) }}
{{- end }}
{{- end }}
