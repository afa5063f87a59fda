{{- define "meshmq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshmq.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "meshmq.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "meshmq.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "meshmq.headless" -}}
{{- printf "%s-headless" (include "meshmq.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshmq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshmq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meshmq.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "meshmq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "meshmq.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* FQDN suffix of the headless service: pods are <pod>.<this>. */}}
{{- define "meshmq.headlessFqdn" -}}
{{- printf "%s.%s.svc.%s" (include "meshmq.headless" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* Secret holding tls.crt/tls.key/ca.crt. */}}
{{- define "meshmq.tlsSecret" -}}
{{- default (printf "%s-tls" (include "meshmq.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "meshmq.authSecret" -}}
{{- default (printf "%s-auth" (include "meshmq.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "meshmq.adminSecret" -}}
{{- default (printf "%s-admin" (include "meshmq.fullname" .)) .Values.admin.existingSecret -}}
{{- end -}}

{{- define "meshmq.clusterSecret" -}}
{{- default (printf "%s-cluster" (include "meshmq.fullname" .)) .Values.cluster.existingSecret -}}
{{- end -}}

{{- define "meshmq.adminTokenEnabled" -}}
{{- if or .Values.admin.existingSecret .Values.admin.token -}}true{{- end -}}
{{- end -}}

{{/*
The broker's config.toml: what the chart must set for the pod's mounts and ports, with
.Values.config merged over it.
*/}}
{{- define "meshmq.config" -}}
{{- $v := .Values -}}
{{- $grace := sub (sub (int $v.terminationGracePeriodSeconds) (int $v.preStopSleepSeconds)) 5 | int -}}
{{- $c := dict "node" (dict "data_dir" "/var/lib/meshmq" "shutdown_grace" (printf "%ds" (max $grace 1))) -}}
{{- /* Listeners the values turn off get port 0, so binary defaults cannot open them. */ -}}
{{- $l := dict "tcp" (dict "port" $v.listeners.mqtt.port) -}}
{{- $_ := set $l "ws" (ternary (dict "port" $v.listeners.ws.port "path" $v.listeners.ws.path) (dict "port" 0) $v.listeners.ws.enabled) -}}
{{- $_ := set $l "tls" (dict "port" (ternary $v.listeners.tls.port 0 (and $v.tls.enabled $v.listeners.tls.enabled))) -}}
{{- $_ := set $l "wss" (dict "port" (ternary $v.listeners.wss.port 0 (and $v.tls.enabled $v.listeners.wss.enabled))) -}}
{{- $_ := set $c "listeners" $l -}}
{{- if $v.tls.enabled -}}
{{- $tls := dict "cert_file" "/etc/meshmq/tls/tls.crt" "key_file" "/etc/meshmq/tls/tls.key" "min_version" $v.tls.minVersion "verify_client" $v.tls.verifyClient -}}
{{- if or $v.tls.existingSecret $v.tls.ca $v.tls.selfSigned -}}
{{- $_ := set $tls "ca_file" "/etc/meshmq/tls/ca.crt" -}}
{{- end -}}
{{- $_ := set $c "tls" $tls -}}
{{- end -}}
{{- if $v.auth.enabled -}}
{{- $_ := set $c "auth" (dict "allow_anonymous" $v.auth.allowAnonymous "password_file" "/etc/meshmq/auth/passwords" "acl_file" "/etc/meshmq/auth/acl") -}}
{{- end -}}
{{- $_ := set $c "http" (dict "port" (ternary $v.http.port 0 $v.http.enabled)) -}}
{{- /* Stop queueing before the volume is full rather than fail writes when it is. */ -}}
{{- $size := $v.persistence.size -}}
{{- if and $v.persistence.enabled $v.persistence.maxDiskPercent (regexMatch "^[0-9]+(Mi|Gi|Ti)$" $size) -}}
{{- $mib := mul (atoi (regexReplaceAll "[^0-9]" $size "")) (get (dict "Mi" 1 "Gi" 1024 "Ti" 1048576) (regexReplaceAll "^[0-9]+" $size "")) -}}
{{- $_ := set $c "storage" (dict "max_disk" (printf "%dMiB" (div (mul $mib $v.persistence.maxDiskPercent) 100))) -}}
{{- end -}}
{{- if $v.cluster.enabled -}}
{{- $_ := set $c "cluster" (dict "port" $v.cluster.port "dns_name" (include "meshmq.headlessFqdn" .)) -}}
{{- end -}}
{{- $merged := mustMergeOverwrite $c (deepCopy $v.config) -}}
{{- include "meshmq.tomlTable" (dict "prefix" "" "table" $merged) -}}
{{- end -}}

{{/* One TOML table: its scalar keys under a [prefix] header, then its sub-tables. */}}
{{- define "meshmq.tomlTable" -}}
{{- $prefix := .prefix -}}
{{- $scalars := list -}}
{{- $tables := list -}}
{{- range $k, $v := .table -}}
{{- if kindIs "map" $v -}}{{- $tables = append $tables $k -}}{{- else -}}{{- $scalars = append $scalars $k -}}{{- end -}}
{{- end -}}
{{- if $scalars }}
{{- if $prefix }}
[{{ $prefix }}]
{{- end }}
{{- range $k := $scalars }}
{{ $k }} = {{ include "meshmq.tomlValue" (index $.table $k) }}
{{- end }}
{{ end -}}
{{- range $k := $tables -}}
{{- include "meshmq.tomlTable" (dict "prefix" (ternary $k (printf "%s.%s" $prefix $k) (eq $prefix "")) "table" (index $.table $k)) -}}
{{- end -}}
{{- end -}}

{{/* A TOML value: YAML numbers arrive as float64, whole ones are written as integers. */}}
{{- define "meshmq.tomlValue" -}}
{{- if kindIs "string" . -}}{{ toJson . }}
{{- else if kindIs "bool" . -}}{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 .) (floor .) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else if kindIs "slice" . -}}[{{ range $i, $e := . }}{{ if $i }}, {{ end }}{{ include "meshmq.tomlValue" $e }}{{ end }}]
{{- else -}}{{ . }}
{{- end -}}
{{- end -}}
