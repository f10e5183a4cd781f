{{/* Names, labels and shared snippets of the tasklease chart. */}}

{{- define "tasklease.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name: the release name, unless it already holds the chart's. */}}
{{- define "tasklease.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tasklease.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/). */}}
{{- define "tasklease.labels" -}}
helm.sh/chart: {{ include "tasklease.chart" . }}
app.kubernetes.io/name: {{ include "tasklease.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tasklease
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "tasklease.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tasklease.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tasklease.componentLabels" -}}
{{ include "tasklease.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tasklease.webhook.fullname" -}}
{{- printf "%s-webhook" (include "tasklease.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tasklease.operator.fullname" -}}
{{- printf "%s-operator" (include "tasklease.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The webhook's Service: the certificate is issued for <service>.<namespace>.svc. */}}
{{- define "tasklease.webhook.serviceName" -}}
{{- include "tasklease.webhook.fullname" . -}}
{{- end -}}

{{/* Secret holding the webhook's serving certificate (cert-manager's or the webhook's own). */}}
{{- define "tasklease.webhook.tlsSecret" -}}
{{- printf "%s-tls" (include "tasklease.webhook.fullname" .) -}}
{{- end -}}

{{/* Both webhook configurations carry the release's full name (the webhook's default is "tasklease"). */}}
{{- define "tasklease.webhookConfigurationName" -}}
{{- include "tasklease.fullname" . -}}
{{- end -}}

{{/* Names the binaries use by default (kube/delegation_keys.h, docs/delegation.md); the
     webhook has no flags for them, so the chart's RBAC names them as they are. */}}
{{- define "tasklease.delegationSigningKeySecret" -}}tasklease-delegation-signing-key{{- end -}}
{{- define "tasklease.delegationKeysConfigMap" -}}tasklease-delegation-keys{{- end -}}

{{/* The operator's objects in the release namespace, passed to it by flag. */}}
{{- define "tasklease.operator.caSecret" -}}{{ include "tasklease.fullname" . }}-ca{{- end -}}
{{- define "tasklease.operator.crlConfigMap" -}}{{ include "tasklease.fullname" . }}-crl{{- end -}}
{{- define "tasklease.operator.evidenceConfigMap" -}}{{ include "tasklease.operator.fullname" . }}-evidence{{- end -}}
{{- define "tasklease.operator.lease" -}}{{ include "tasklease.operator.fullname" . }}{{- end -}}

{{- define "tasklease.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the webhooks never see: kube-system, the release's own, and any listed. */}}
{{- define "tasklease.exemptNamespaces" -}}
{{- $all := list "kube-system" .Release.Namespace -}}
{{- range .Values.webhook.exemptNamespaces -}}{{- $all = append $all . -}}{{- end -}}
{{- toJson (uniq $all) -}}
{{- end -}}

{{/* Restricted pod security (Pod Security Standards "restricted"). */}}
{{- define "tasklease.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tasklease.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Default spread: different nodes and zones when the scheduler can, never blocking it. */}}
{{- define "tasklease.topologySpread" -}}
{{- if .constraints -}}
{{ toYaml .constraints }}
{{- else -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "tasklease.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "tasklease.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end -}}
{{- end -}}

{{/* clientConfig of one webhook: call with (dict "ctx" $ "path" "/validate"). */}}
{{- define "tasklease.clientConfig" -}}
service:
  name: {{ include "tasklease.webhook.serviceName" .ctx }}
  namespace: {{ .ctx.Release.Namespace }}
  port: {{ .ctx.Values.webhook.service.port }}
  path: {{ .path }}
{{- end -}}

{{/* Who fills the caBundle of the webhook configurations. */}}
{{- define "tasklease.configurationAnnotations" -}}
annotations:
{{- if .Values.certManager.enabled }}
  # cert-manager's cainjector writes the CA of this Certificate into every caBundle below.
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "tasklease.webhook.fullname" . }}
{{- else }}
  # No caBundle here: the webhook (--manage-certs) writes its CA into it and keeps it current.
  tasklease.io/ca-bundle-managed-by: tasklease-webhook
{{- end }}
{{- end -}}
