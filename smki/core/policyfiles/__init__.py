"""One module per family of policy files: the schema of each file in ``policies/`` as frozen pydantic models,
with the checks that span keys or files. :mod:`smki.core.policy` loads them; ``docs/configuration.md``
describes them."""
