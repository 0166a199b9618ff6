"""The Pulumi program: infra/__main__.py wires the components; infra/settings/ reads the stack."""
