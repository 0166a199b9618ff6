"""The reference web app that pyscale deploys (see app/contract.py for what it promises)."""
