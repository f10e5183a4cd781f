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

{{/* The delegation signing key Secret and the public keys ConfigMap (docs/delegation.md). The
     chart passes them to the webhook (--signing-key-secret, --delegation-keys-configmap) and the
     operator (--delegation-keys-configmap), and its RBAC grants these names only. They keep the
     binaries' default names rather than the release's: a rename on upgrade would make the
     webhook generate a new key, and the published keys the stamps of running tasks are
     verified against would be left behind. */}}
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

{{/* Seconds in a Go-style duration (1h30m, 90s, 1.5h, 250ms), as the binaries' duration flags
     read it; values.schema.json has already refused any other form. */}}
{{- define "tasklease.seconds" -}}
{{- $scale := dict "ns" 1e-9 "us" 1e-6 "µs" 1e-6 "ms" 1e-3 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" . -1 -}}
{{- $number := regexFind "^[0-9.]+" . -}}
{{- $total = addf $total (mulf (float64 $number) (get $scale (trimPrefix $number .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* The webhook's own rules on its flags, checked here so that a bad combination fails the
     install instead of leaving the webhook unable to start or unable to answer in time: the
     review budget below the registrations' timeoutSeconds; and the certificate flags
     (checkCertManagerOptions in webhook/cert_manager.cpp, which truncates each to whole
     seconds), only without cert-manager, since otherwise the chart does not pass them. */}}
{{- define "tasklease.webhook.checkValues" -}}
{{- $budget := include "tasklease.seconds" .Values.webhook.reviewBudget | float64 -}}
{{- if or (lt $budget 0.01) (ge $budget (float64 .Values.webhook.timeoutSeconds)) -}}
{{- fail (printf "webhook.reviewBudget (%s) must be at least 10ms and less than webhook.timeoutSeconds (%d s): a review that runs out of budget is refused with a message, which must reach the API server before it gives up on the webhook" .Values.webhook.reviewBudget (int .Values.webhook.timeoutSeconds)) -}}
{{- end -}}
{{- if not .Values.certManager.enabled -}}
{{- $c := .Values.webhook.selfManagedCerts -}}
{{- $ca := include "tasklease.seconds" $c.caValidity | float64 | floor -}}
{{- $cert := include "tasklease.seconds" $c.certValidity | float64 | floor -}}
{{- $overlap := include "tasklease.seconds" $c.caOverlap | float64 | floor -}}
{{- if lt $cert 600.0 -}}
{{- fail (printf "webhook.selfManagedCerts.certValidity (%s) must be at least 10m" $c.certValidity) -}}
{{- end -}}
{{- if le $ca $cert -}}
{{- fail (printf "webhook.selfManagedCerts.caValidity (%s) must be longer than webhook.selfManagedCerts.certValidity (%s): the CA signs the serving certificates" $c.caValidity $c.certValidity) -}}
{{- end -}}
{{- if or (le $overlap 0.0) (ge (mulf $overlap 3) $ca) -}}
{{- fail (printf "webhook.selfManagedCerts.caOverlap (%s) must be at least 1s and less than a third of webhook.selfManagedCerts.caValidity (%s): the next CA enters the caBundle at 2/3 of the signing CA's life and must take over before that CA expires" $c.caOverlap $c.caValidity) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The operator's rules on its duration flags (validateOptions in operator/app.cpp), checked
     here for the same reason. */}}
{{- define "tasklease.operator.checkValues" -}}
{{- $op := .Values.operator -}}
{{- $validity := include "tasklease.seconds" $op.caValidity | float64 -}}
{{- $rotate := include "tasklease.seconds" $op.caRotateBefore | float64 -}}
{{- if le $rotate 86400.0 -}}
{{- fail (printf "operator.caRotateBefore (%s) must be longer than 24h, the longest task TTL, so that every SVID expires before the CA that signed it" $op.caRotateBefore) -}}
{{- end -}}
{{- if le $validity $rotate -}}
{{- fail (printf "operator.caValidity (%s) must be longer than operator.caRotateBefore (%s), or every start would rotate the CA" $op.caValidity $op.caRotateBefore) -}}
{{- end -}}
{{- if lt (include "tasklease.seconds" $op.sweepInterval | float64) 1.0 -}}
{{- fail (printf "operator.sweepInterval (%s) must be at least 1s" $op.sweepInterval) -}}
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
