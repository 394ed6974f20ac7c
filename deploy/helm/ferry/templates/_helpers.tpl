{{- define "ferry.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ferry.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- /* The services' image: by digest when image.digest is set (what `make images` prints
     in var/images/ferry/image.json), else by tag. */ -}}
{{- define "ferry.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- /* The pods of one service: (list $root "component"). The sink pods' NetworkPolicies
     (made by kubevirt-writer) admit app.kubernetes.io/name=ferry, component=transfer. */ -}}
{{- define "ferry.podSelector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- /* The namespaces kubevirt-writer works in; fails on the release namespace, whose
     Secrets (other services' NATS credentials, the NBD CA, provider passwords) a target
     Role would open to the writer. */ -}}
{{- define "ferry.targetNamespaces" -}}
{{- range .Values.targetNamespaces }}
{{- if eq . $.Release.Namespace }}
{{- fail (printf "targetNamespaces may not contain the release namespace %q: kubevirt-writer would reach Ferry's own Secrets; migrate into other namespaces" .) }}
{{- end }}
{{- end }}
{{- toJson (.Values.targetNamespaces | uniq) -}}
{{- end -}}

{{- define "ferry.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- /* The NBD TLS material as a dict (caCert, caKey, clientCert, clientKey: base64 PEM),
     made once per render and cached on the root context: the existing Secrets when
     `lookup` finds them (install and upgrade against a cluster), else a new ECDSA CA and
     a transfer client certificate it signs. `helm template` cannot look up, so it always
     shows new material. */ -}}
{{- define "ferry.nbdTls" -}}
{{- if not (hasKey $ "ferryNbdTls") }}
{{- $name := include "ferry.fullname" $ }}
{{- $ca := lookup "v1" "Secret" $.Release.Namespace (printf "%s-nbd-ca" $name) }}
{{- $transfer := lookup "v1" "Secret" $.Release.Namespace (printf "%s-nbd-transfer" $name) }}
{{- $days := int $.Values.nbdTls.validityDays }}
{{- $result := dict }}
{{- if and $ca $transfer }}
{{- $result = dict "caCert" (index $ca.data "ca-cert.pem") "caKey" (index $ca.data "ca-key.pem") "clientCert" (index $transfer.data "client-cert.pem") "clientKey" (index $transfer.data "client-key.pem") }}
{{- else }}
{{- $authority := dict }}
{{- if $ca }}
{{- $authority = buildCustomCert (index $ca.data "ca-cert.pem") (index $ca.data "ca-key.pem") }}
{{- else }}
{{- $authority = genCAWithKey (printf "%s NBD CA" $name) $days (genPrivateKey "ecdsa") }}
{{- end }}
{{- $client := genSignedCertWithKey "ferry-transfer" nil nil $days $authority (genPrivateKey "ecdsa") }}
{{- $result = dict "caCert" ($authority.Cert | b64enc) "caKey" ($authority.Key | b64enc) "clientCert" ($client.Cert | b64enc) "clientKey" ($client.Key | b64enc) }}
{{- end }}
{{- $_ := set $ "ferryNbdTls" $result }}
{{- end }}
{{- toJson (get $ "ferryNbdTls") -}}
{{- end -}}

{{- /* topologySpreadConstraints of one service's pods: (list $root "component" $spread),
     $spread mapping hostname and zone to whenUnsatisfiable ("" leaves that topology out). */ -}}
{{- define "ferry.topologySpread" -}}
{{- $root := index . 0 -}}
{{- $spread := index . 2 -}}
{{- range $topology, $key := dict "hostname" "kubernetes.io/hostname" "zone" "topology.kubernetes.io/zone" }}
{{- with get $spread $topology }}
- maxSkew: 1
  topologyKey: {{ $key }}
  whenUnsatisfiable: {{ . }}
  labelSelector:
    matchLabels:
      {{- include "ferry.podSelector" (list $root (index $ 1)) | nindent 6 }}
{{- end }}
{{- end }}
{{- end -}}

{{- /* Whether something other than the chart owns the transfer's replicas (an autoscaler). */ -}}
{{- define "ferry.transfer.autoscaled" -}}
{{- $a := .Values.services.transfer.autoscaling -}}
{{- if or $a.external $a.keda.enabled }}true{{ end -}}
{{- end -}}
