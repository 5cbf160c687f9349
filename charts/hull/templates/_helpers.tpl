{{- define "hull.name" -}}
{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- end }}

{{- define "hull.selector" -}}
app.kubernetes.io/name: hull
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hull.labels" -}}
{{ include "hull.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "hull.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
