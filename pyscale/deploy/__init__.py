"""Deploy steps around `pulumi up`: `pyscale deploy wait` (wait.py) and the stack outputs it
reads (outputs.py)."""
