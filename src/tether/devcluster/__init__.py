"""A local Kubernetes control plane, git server and pass store for the demo and the tests.

Never needed in production: it exists so that everything Tether claims is tested against
real parts on a machine with no Docker and no internet beyond package registries.
"""
