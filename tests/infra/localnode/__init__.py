"""The local node: a small agent that plays kubelet and scheduler for one Node, `kubeloop-local`.

It binds pending pods to itself and runs each container as a local process in its own mount
namespace, so volumes and the termination message sit at their real paths. See DESIGN.md §6.
"""

NODE_NAME = "kubeloop-local"
