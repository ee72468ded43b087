{{/*
The operator's permissions, one place for both modes. These are all it needs, and no more: it never
reads Secrets (workloads get the S3 keys by reference), never deletes (owner references let the
garbage collector do that) and never writes a resource's spec.
*/}}

{{/* Rules on namespaced resources: a ClusterRole cluster-wide, a Role per watched namespace. */}}
{{- define "kubeloop.rbac.namespacedRules" -}}
# Our resources: read and watch them; patch only Kopf's bookkeeping annotations, never spec.
- apiGroups: [kubeloop.io]
  resources: [trainingruns, modelversions, modeldeployments, modelmonitors]
  verbs: [get, list, watch, patch]
# Their status is written by the operator alone.
- apiGroups: [kubeloop.io]
  resources: [trainingruns/status, modelversions/status, modeldeployments/status, modelmonitors/status]
  verbs: [get, patch]
# A succeeded TrainingRun registers its model as a new ModelVersion.
- apiGroups: [kubeloop.io]
  resources: [modelversions]
  verbs: [create]
# Training, search trials and version validation run as Jobs.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create]
# The Jobs' pods: their termination messages carry the results.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
# Events on state transitions, next to the resource they are about.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* Rules on cluster-scoped resources: always in a ClusterRole. */}}
{{- define "kubeloop.rbac.clusterRules" -}}
# Kopf discovers the kubeloop.io resources as their CRDs come and go.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# Kopf follows namespaces as they come and go.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
