"""The Pulumi program: infra/__main__.py wires the components; infra/config.py reads the stack."""
