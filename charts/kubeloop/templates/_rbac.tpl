{{/*
The operator's permissions, one place for both modes. These are all it needs, and no more: it never
reads Secrets (workloads get the S3 keys, and notification pods the SMTP credentials, by reference),
never writes a resource's spec, and deletes only the serving children of a version a ModelDeployment
has retired (owner references let the garbage collector remove everything else).
*/}}

{{/* Rules on namespaced resources: a ClusterRole cluster-wide, a Role per watched namespace. */}}
{{- define "kubeloop.rbac.namespacedRules" -}}
# Our resources: read and watch them; patch only Kopf's bookkeeping annotations, never spec.
- apiGroups: [kubeloop.io]
  resources: [trainingruns, modelversions, modeldeployments, modelmonitors, batchpredictions]
  verbs: [get, list, watch, patch]
# Their status is written by the operator alone.
- apiGroups: [kubeloop.io]
  resources: [trainingruns/status, modelversions/status, modeldeployments/status, modelmonitors/status,
              batchpredictions/status]
  verbs: [get, patch]
# A succeeded TrainingRun registers a ModelVersion; a drifting ModelMonitor starts a TrainingRun.
- apiGroups: [kubeloop.io]
  resources: [modelversions, trainingruns]
  verbs: [create]
# Training, search trials, version validation, batch scoring and its notifications run as Jobs.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create]
# Monitors and scheduled batch predictions run on a schedule.
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, create, patch]
# Model servers and routers of a ModelDeployment; a retired version's are deleted.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
# Their Services.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
# The routing ConfigMap the routers follow.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
# Optional per-version autoscaling and disruption budgets.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, create, patch, delete]
# A PodDisruptionBudget per version with more than one server pod.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch, delete]
# Routers read their routing ConfigMap and backends' EndpointSlices with their own account and Role
# (granted by the operator, which must hold those permissions itself); the operator finds router pods
# through the same EndpointSlices to read their comparison statistics.
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
# The routers' own account, Role and RoleBinding (read-only, their namespace).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch]
# The routers' Role and RoleBinding.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch]
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
