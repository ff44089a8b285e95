{{- define "entente.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "entente.labels" -}}
app.kubernetes.io/name: entente
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "entente.selectorLabels" -}}
app.kubernetes.io/name: entente
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "entente.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "entente.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "entente.leaderElection" -}}
{{- $le := .Values.leaderElection.enabled -}}
{{- if eq (toString $le) "auto" -}}
{{- gt (int .Values.replicaCount) 1 -}}
{{- else -}}
{{- $le -}}
{{- end -}}
{{- end -}}
